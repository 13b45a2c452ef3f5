"""The managed networks' DNS records: forward and reverse zones from networks, reservations, leases."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Network, IPv6Network, ip_address

import pytest

from pvc.net.dns_records import (
    DnsZone,
    Host,
    NetworkDns,
    Record,
    build_zones,
    network_zones,
    normal_domain,
    reverse_blocks,
    reverse_zone_name,
)

TTL = 60


def _net(**changes) -> NetworkDns:
    base = NetworkDns(
        network_id="100",
        domain="Prod.Example.",
        network=IPv4Network("10.100.0.0/24"),
        gateway=ip_address("10.100.0.1"),
        reservations=(Host("web1", ip_address("10.100.0.10")),),
        leases=(Host("vm5", ip_address("10.100.0.105"), expires=1000),),
    )
    return dataclasses.replace(base, **changes)


def _zones(net: NetworkDns) -> tuple[dict[str, DnsZone], list]:
    zones, skipped = network_zones(net, ttl=TTL)
    return {zone.name: zone for zone in zones}, skipped


def _a(zone: DnsZone) -> dict[str, str]:
    return {record.name: record.content for record in zone.records if record.type in ("A", "AAAA")}


def _ptr(zone: DnsZone) -> dict[str, str]:
    return {record.name: record.content for record in zone.records if record.type == "PTR"}


def test_forward_zone_has_gateway_nameserver_reservations_and_leases() -> None:
    zones, skipped = _zones(_net())
    assert set(zones) == {"prod.example", "0.100.10.in-addr.arpa"}
    forward = zones["prod.example"]
    assert _a(forward) == {
        "gateway.prod.example": "10.100.0.1",
        "ns1.prod.example": "10.100.0.1",
        "web1.prod.example": "10.100.0.10",
        "vm5.prod.example": "10.100.0.105",
    }
    assert Record("prod.example", "NS", "ns1.prod.example", TTL) in forward.records
    assert forward.soa.mname == "ns1.prod.example" and forward.soa.rname == "hostmaster.prod.example"
    assert skipped == []


def test_reverse_zone_has_one_ptr_per_named_address_gateway_first() -> None:
    zones, _ = _zones(_net())
    reverse = zones["0.100.10.in-addr.arpa"]
    assert _ptr(reverse) == {
        "1.0.100.10.in-addr.arpa": "gateway.prod.example",  # not ns1: the gateway's name wins
        "10.0.100.10.in-addr.arpa": "web1.prod.example",
        "105.0.100.10.in-addr.arpa": "vm5.prod.example",
    }
    assert Record("0.100.10.in-addr.arpa", "NS", "ns1.prod.example", TTL) in reverse.records


def test_reservation_beats_lease_of_the_same_hostname() -> None:
    net = _net(leases=(Host("WEB1", ip_address("10.100.0.150"), expires=5),))
    zones, skipped = _zones(net)
    assert _a(zones["prod.example"])["web1.prod.example"] == "10.100.0.10"
    assert "150.0.100.10.in-addr.arpa" not in _ptr(zones["0.100.10.in-addr.arpa"])
    assert [(s.what, s.reason) for s in skipped] == [("WEB1 10.100.0.150", "hostname taken by a reservation")]


def test_later_lease_wins_between_two_leases_of_one_hostname() -> None:
    leases = (
        Host("vm5", ip_address("10.100.0.105"), expires=1000),
        Host("vm5", ip_address("10.100.0.99"), expires=2000),
    )
    zones, skipped = _zones(_net(leases=leases))
    assert _a(zones["prod.example"])["vm5.prod.example"] == "10.100.0.99"
    assert [s.what for s in skipped] == ["vm5 10.100.0.105"]
    assert skipped[0].reason == "hostname taken by another lease"


@pytest.mark.parametrize(
    ("hostname", "reason"),
    [
        ("bad_name", "not a valid DNS label"),
        ("a.b", "not a valid DNS label"),
        ("-lead", "not a valid DNS label"),
        ("x" * 64, "not a valid DNS label"),
        ("evil\nname", "not a valid DNS label"),
        ("gateway", "a name PVC reserves for its own records"),
        ("ns2", "a name PVC reserves for its own records"),
    ],
)
def test_bad_or_reserved_hostnames_are_skipped_and_reported(hostname: str, reason: str) -> None:
    net = _net(
        leases=(Host(hostname, ip_address("10.100.0.120")), Host("good-1", ip_address("10.100.0.121")))
    )
    zones, skipped = _zones(net)
    forward = _a(zones["prod.example"])
    assert forward["good-1.prod.example"] == "10.100.0.121"
    assert "10.100.0.120" not in forward.values()
    assert len(skipped) == 1 and skipped[0].reason == reason and "10.100.0.120" in str(skipped[0])


def test_lease_without_hostname_has_no_record_and_is_not_reported() -> None:
    net = _net(leases=(Host(None, ip_address("10.100.0.130")), Host("*", ip_address("10.100.0.131"))))
    zones, skipped = _zones(net)
    assert set(_a(zones["prod.example"]).values()) == {"10.100.0.1", "10.100.0.10"}
    assert skipped == []


def test_address_outside_the_network_is_skipped() -> None:
    zones, skipped = _zones(_net(leases=(Host("far", ip_address("10.200.0.5")),)))
    assert "far.prod.example" not in _a(zones["prod.example"])
    assert skipped[0].reason == "address outside the network"


def test_ipv6_gateway_and_reservation_give_aaaa_records() -> None:
    net = _net(
        network6=IPv6Network("2001:db8:100::/64"),
        gateway6=ip_address("2001:db8:100::1"),
        reservations=(Host("web1", ip_address("10.100.0.10")), Host("web1", ip_address("2001:db8:100::10"))),
    )
    zones, skipped = _zones(net)
    aaaa = {(r.name, r.content) for r in zones["prod.example"].records if r.type == "AAAA"}
    assert aaaa == {
        ("gateway.prod.example", "2001:db8:100::1"),
        ("ns2.prod.example", "2001:db8:100::1"),
        ("web1.prod.example", "2001:db8:100::10"),
    }
    assert skipped == []


def test_explicit_nameservers_replace_the_gateway_as_ns() -> None:
    net = _net(nameservers=(ip_address("192.0.2.53"), ip_address("10.100.0.1")))
    zones, _ = _zones(net)
    forward = zones["prod.example"]
    assert _a(forward)["ns1.prod.example"] == "192.0.2.53"
    assert _a(forward)["ns2.prod.example"] == "10.100.0.1"
    assert {r.content for r in forward.records if r.type == "NS"} == {"ns1.prod.example", "ns2.prod.example"}
    # the aggregator's address is outside the network: no PTR for it here
    assert all("192.0.2.53" not in name for name in _ptr(zones["0.100.10.in-addr.arpa"]))


@pytest.mark.parametrize(
    ("network", "zones"),
    [
        ("10.1.2.0/24", ["2.1.10.in-addr.arpa"]),
        (
            "10.1.0.0/22",
            ["0.1.10.in-addr.arpa", "1.1.10.in-addr.arpa", "2.1.10.in-addr.arpa", "3.1.10.in-addr.arpa"],
        ),
        ("10.1.0.0/16", ["1.10.in-addr.arpa"]),
        ("10.0.0.0/8", ["10.in-addr.arpa"]),
        ("10.1.2.0/26", []),
        ("10.0.0.0/7", []),
    ],
)
def test_reverse_zones_are_octet_aligned_blocks(network: str, zones: list[str]) -> None:
    assert [reverse_zone_name(block) for block in reverse_blocks(IPv4Network(network))] == zones


def test_records_fall_into_their_own_reverse_block() -> None:
    net = _net(
        network=IPv4Network("10.1.0.0/23"),
        gateway=ip_address("10.1.0.1"),
        reservations=(Host("hi", ip_address("10.1.1.7")),),
        leases=(),
    )
    zones, _ = _zones(net)
    assert _ptr(zones["0.1.10.in-addr.arpa"]) == {"1.0.1.10.in-addr.arpa": "gateway.prod.example"}
    assert _ptr(zones["1.1.10.in-addr.arpa"]) == {"7.1.1.10.in-addr.arpa": "hi.prod.example"}


def test_small_network_gets_no_reverse_zone() -> None:
    zones, _ = _zones(_net(network=IPv4Network("10.100.0.0/26"), leases=()))
    assert list(zones) == ["prod.example"]


@pytest.mark.parametrize(
    "domain", ["", "bad_domain.test", "a..b", "x\ny.test", "-a.test", "a" * 64 + ".test"]
)
def test_invalid_domain_skips_the_network(domain: str) -> None:
    assert normal_domain(domain) is None
    zones, skipped = _zones(_net(domain=domain))
    assert zones == {} and skipped[0].reason == "not a valid DNS name"


def test_network_without_any_nameserver_address_is_skipped() -> None:
    zones, skipped = _zones(_net(gateway=None))
    assert zones == {} and skipped[0].reason == "no gateway or nameserver address"


def test_duplicate_zone_across_networks_keeps_the_first() -> None:
    first = _net()
    second = _net(network_id="200", domain="other.example")  # same subnet: same reverse zone
    result = build_zones([first, second], ttl=TTL)
    names = [zone.name for zone in result.zones]
    assert names == ["prod.example", "0.100.10.in-addr.arpa", "other.example"]
    reverse = next(zone for zone in result.zones if zone.name == "0.100.10.in-addr.arpa")
    assert set(_ptr(reverse).values()) >= {"web1.prod.example"}
    assert [str(s) for s in result.skipped] == [
        "network 200: zone 0.100.10.in-addr.arpa: zone already built for network 100"
    ]


def test_soa_content_carries_the_serial() -> None:
    zones, _ = _zones(_net())
    assert (
        zones["prod.example"].soa.content(7)
        == "ns1.prod.example hostmaster.prod.example 7 10800 1800 604800 60"
    )
