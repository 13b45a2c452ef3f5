"""A network's dnsmasq configuration: what it says, and the values it refuses.

tests/integration/test_net_dnsmasq.py runs dnsmasq from it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pvc.net.dnsmasq import (
    DnsmasqError,
    DnsmasqNetwork,
    InstanceFiles,
    Reservation,
    render_config,
    render_names,
    render_reservations,
)

FILES = InstanceFiles(Path("/run/pvc/dnsmasq/vni100"))
HOOK = "/usr/lib/pvc/lease-hook"


def _network(**changes) -> DnsmasqNetwork:
    fields = dict(
        vni=100,
        domain="Net100.Example",
        ip4_network="10.100.0.0/24",
        gateway4="10.100.0.1",
        dhcp4_start="10.100.0.100",
        dhcp4_end="10.100.0.199",
    )
    return DnsmasqNetwork(**{**fields, **changes})


def _lines(network: DnsmasqNetwork, **kwargs) -> list[str]:
    return render_config(network, FILES, HOOK, **kwargs).splitlines()


def test_the_config_serves_only_the_network_bridge_and_keeps_no_leases() -> None:
    lines = _lines(_network(lease_time=900))
    for line in [
        "interface=vmbr100",
        "except-interface=lo",
        "bind-interfaces",
        "no-resolv",
        "no-hosts",
        "no-ping",
        "dhcp-authoritative",
        "leasefile-ro",
        f"dhcp-script={HOOK}",
        "pid-file=/run/pvc/dnsmasq/vni100/dnsmasq.pid",
        "log-facility=/run/pvc/dnsmasq/vni100/dnsmasq.log",
        "dhcp-hostsfile=/run/pvc/dnsmasq/vni100/reservations",
        "addn-hosts=/run/pvc/dnsmasq/vni100/names",
        "domain=net100.example",
        "local=/net100.example/",
        "dhcp-range=10.100.0.100,10.100.0.199,255.255.255.0,900",
        "dhcp-option=option:router,10.100.0.1",
        "dhcp-option=option:dns-server,10.100.0.1",
    ]:
        assert line in lines
    assert not any(line.startswith(("server=", "enable-ra", "user=")) for line in lines)


def test_name_servers_are_handed_out_per_address_family() -> None:
    network = _network(
        name_servers=("192.0.2.53", "2001:db8::53"),
        ip6_network="2001:db8:100::/64",
        gateway6="2001:db8:100::1",
    )
    lines = _lines(network)
    assert "dhcp-option=option:dns-server,192.0.2.53" in lines
    assert "dhcp-option=option6:dns-server,[2001:db8::53]" in lines


def test_ipv6_advertises_routes_and_dhcpv6_only_when_asked() -> None:
    slaac = _lines(_network(ip6_network="2001:db8:100::/64", gateway6="2001:db8:100::1"))
    assert "enable-ra" in slaac
    assert "dhcp-range=2001:db8:100::,ra-only,64,3600" in slaac
    assert "dhcp-option=option6:dns-server,[2001:db8:100::1]" in slaac
    stateful = _lines(_network(ip6_network="2001:db8:100::/64", gateway6="2001:db8:100::1", dhcp6=True))
    assert "dhcp-range=2001:db8:100::1000,2001:db8:100::ffff,slaac,64,3600" in stateful
    assert not any("ra-only" in line for line in stateful)


def test_reservations_go_to_files_dnsmasq_rereads() -> None:
    network = _network(
        reservations=(
            Reservation("02:00:00:00:00:0B", "10.100.0.20", "Web2"),
            Reservation("02-00-00-00-00-0a", "10.100.0.10", "web1"),
        )
    )
    assert (
        render_reservations(network)
        == "02:00:00:00:00:0a,10.100.0.10,web1\n02:00:00:00:00:0b,10.100.0.20,web2\n"
    )
    assert render_names(network) == (
        "10.100.0.10 web1.net100.example web1\n10.100.0.20 web2.net100.example web2\n"
    )
    # reservations are not in the config: changing them needs no restart
    assert "web1" not in render_config(network, FILES, HOOK)


def test_reservations_without_a_dynamic_range_get_a_static_one() -> None:
    network = _network(
        dhcp4_start=None,
        dhcp4_end=None,
        reservations=(Reservation("02:00:00:00:00:0a", "10.100.0.10", "web1"),),
    )
    assert "dhcp-range=10.100.0.0,static,255.255.255.0,3600" in _lines(network)
    assert not any(
        line.startswith("dhcp-range") for line in _lines(_network(dhcp4_start=None, dhcp4_end=None))
    )


def test_dnsmasq_may_drop_to_a_named_user() -> None:
    assert "user=dnsmasq" in _lines(_network(), user="dnsmasq")


@pytest.mark.parametrize(
    "changes",
    [
        {"vni": 0},
        {"vni": True},
        {"domain": "net100.example\nserver=8.8.8.8"},
        {"domain": "bad_domain.example"},
        {"domain": ""},
        {"bridge": "vmbr100\nserver=1.1.1.1"},
        {"ip4_network": "10.100.0.1/24"},
        {"ip4_network": "10.100.0.0/24,10.0.0.0/8"},
        {"gateway4": "10.101.0.1"},
        {"gateway4": "10.100.0.255"},
        {"gateway4": None},
        {"dhcp4_start": "10.100.0.200"},
        {"dhcp4_end": None},
        {"dhcp4_start": "10.100.0.1"},
        {"dhcp4_end": "10.100.0.199\ndhcp-script=/tmp/x"},
        {"ip4_network": None, "gateway4": None, "dhcp4_start": None, "dhcp4_end": None},
        {"ip6_network": "2001:db8::/80", "gateway6": "2001:db8::1"},
        {"ip6_network": "2001:db8::/64"},
        {"gateway6": "2001:db8::1"},
        {"dhcp6": True},
        {"name_servers": ("8.8.8.8,1.1.1.1",)},
        {"name_servers": "8.8.8.8"},
        {"lease_time": 60},
        {"lease_time": "3600"},
        {"reservations": (Reservation("02:00:00:00:00:0a", "10.100.0.1", "gw"),)},
        {"reservations": (Reservation("02:00:00:00:00:0a", "10.200.0.10", "far"),)},
        {
            "reservations": (
                Reservation("02:00:00:00:00:0a", "10.100.0.10", "a"),
                Reservation("02:00:00:00:00:0a", "10.100.0.11", "b"),
            )
        },
        {
            "reservations": (
                Reservation("02:00:00:00:00:0a", "10.100.0.10", "a"),
                Reservation("02:00:00:00:00:0b", "10.100.0.11", "a"),
            )
        },
        {"reservations": (("02:00:00:00:00:0a", "10.100.0.10", "a"),)},
    ],
)
def test_networks_that_could_break_or_extend_the_config_are_refused(changes: dict) -> None:
    with pytest.raises(DnsmasqError):
        _network(**changes)


@pytest.mark.parametrize(
    "fields",
    [
        ("02:00:00:00:00:0a\n", "10.100.0.10", "a"),
        ("02:00:00:00:00:0a,x", "10.100.0.10", "a"),
        ("02:00:00:00:0a", "10.100.0.10", "a"),
        ("02:00:00:00:00:0a", "10.100.0.10,infinite", "a"),
        ("02:00:00:00:00:0a", "10.100.0.10", "a,ignore"),
        ("02:00:00:00:00:0a", "10.100.0.10", "a.b"),
        ("02:00:00:00:00:0a", "10.100.0.10", "-a"),
        ("02:00:00:00:00:0a", "10.100.0.10", "a\nserver=8.8.8.8"),
        ("02:00:00:00:00:0a", "10.100.0.10", ""),
    ],
)
def test_reservation_values_that_could_add_fields_or_lines_are_refused(fields: tuple) -> None:
    with pytest.raises(DnsmasqError):
        Reservation(*fields)


@pytest.mark.parametrize("hook", ["relative/hook", "/usr/lib/pvc/hook\nserver=8.8.8.8", "/a,b"])
def test_hook_paths_must_be_absolute_single_lines(hook: str) -> None:
    with pytest.raises(DnsmasqError):
        render_config(_network(), FILES, hook)
