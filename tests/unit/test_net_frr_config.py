"""FRR's configuration for the managed networks: what each role gets, and what is refused."""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvc.net.frr_config import (
    DEFAULT_ASN,
    LAB_TIMERS,
    BgpTimers,
    FrrConfigError,
    FrrParams,
    UpstreamBgp,
    announced_prefixes,
    prefix_change_commands,
    render_bgpd,
    render_zebra,
)

NETWORK = "10.0.1.0/24"
COORDINATORS = ("10.0.1.3", "10.0.1.1", "10.0.1.2")
DIRECTORY = "/run/pvc/frr"


def coordinator(**changes) -> FrrParams:
    values = dict(
        node_name="hv1",
        router_id="10.0.1.1",
        cluster_network=NETWORK,
        coordinators=COORDINATORS,
        is_coordinator=True,
        directory=DIRECTORY,
    )
    return FrrParams(**{**values, **changes})


def client(**changes) -> FrrParams:
    return coordinator(**{"node_name": "hv4", "router_id": "10.0.1.4", "is_coordinator": False, **changes})


def upstream(**changes) -> UpstreamBgp:
    values = dict(peers=("10.0.0.254",), asn=65000, ipv4_prefixes=("10.100.0.0/24",))
    return UpstreamBgp(**{**values, **changes})


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_a_coordinator_reflects_for_the_cluster_network_and_peers_with_the_other_coordinators() -> None:
    text = lines(render_bgpd(coordinator()))
    assert f"router bgp {DEFAULT_ASN}" in text
    assert " bgp router-id 10.0.1.1" in text
    assert " no bgp default ipv4-unicast" in text
    assert " bgp cluster-id 10.0.1.0" in text  # the same on every coordinator
    assert " bgp listen range 10.0.1.0/24 peer-group NODES" in text
    assert [line for line in text if line.endswith("peer-group COORDINATORS")] == [
        " neighbor 10.0.1.2 peer-group COORDINATORS",
        " neighbor 10.0.1.3 peer-group COORDINATORS",
    ]  # never itself
    evpn = text[text.index(" address-family l2vpn evpn") : text.index(" exit-address-family") + 1]
    assert evpn == [
        " address-family l2vpn evpn",
        "  neighbor COORDINATORS activate",
        "  neighbor NODES activate",
        "  neighbor NODES route-reflector-client",
        "  advertise-all-vni",
        "  advertise-svi-ip",
        " exit-address-family",
    ]
    assert not any(line.startswith("  network ") or "route-map" in line for line in text)


def test_every_coordinator_shares_the_cluster_id_but_not_its_own_peers() -> None:
    hv2 = render_bgpd(coordinator(node_name="hv2", router_id="10.0.1.2"))
    assert " bgp cluster-id 10.0.1.0" in lines(hv2)
    assert " neighbor 10.0.1.1 peer-group COORDINATORS" in lines(hv2)
    assert " neighbor 10.0.1.2 peer-group COORDINATORS" not in lines(hv2)


def test_a_client_peers_with_every_coordinator_and_reflects_nothing() -> None:
    text = lines(render_bgpd(client()))
    assert [line for line in text if line.endswith("peer-group COORDINATORS")] == [
        f" neighbor {address} peer-group COORDINATORS" for address in ("10.0.1.1", "10.0.1.2", "10.0.1.3")
    ]
    assert not any("cluster-id" in line or "listen" in line or "NODES" in line for line in text)
    assert not any("route-reflector-client" in line for line in text)
    assert "  neighbor COORDINATORS activate" in text
    assert "  advertise-all-vni" in text


def test_a_lone_coordinator_has_no_coordinator_peers() -> None:
    text = render_bgpd(coordinator(coordinators=("10.0.1.1",)))
    assert "COORDINATORS" not in text
    assert " bgp listen range 10.0.1.0/24 peer-group NODES" in lines(text)


def test_timers_default_to_the_datacenter_profile_and_the_lab_ones_are_quick() -> None:
    assert " neighbor NODES timers 3 9" in lines(render_bgpd(coordinator()))
    assert " neighbor NODES timers connect 5" in lines(render_bgpd(coordinator()))
    text = lines(render_bgpd(client(timers=LAB_TIMERS)))
    assert " neighbor COORDINATORS timers 1 3" in text
    assert " neighbor COORDINATORS timers connect 1" in text
    text = lines(render_bgpd(client(timers=BgpTimers(keepalive=10, hold=30, connect=10, coalesce_ms=1000))))
    assert " neighbor COORDINATORS timers 10 30" in text
    assert " coalesce-time 1000" in text
    assert " coalesce-time 100" in lines(render_bgpd(client()))


def test_zebra_gets_its_name_and_logs_to_its_output() -> None:
    assert lines(render_zebra(client())) == [
        "frr defaults datacenter",
        "hostname hv4",
        "log stdout informational",
        "!",
    ]


def test_the_upstream_block_only_when_given() -> None:
    params = coordinator(upstream=upstream(peers=("10.0.0.254", "10.0.0.253"), update_source="10.0.0.10"))
    text = lines(render_bgpd(params))
    for peer in ("10.0.0.253", "10.0.0.254"):
        assert f" neighbor {peer} remote-as 65000" in text
        assert f" neighbor {peer} update-source 10.0.0.10" in text
        assert f"  neighbor {peer} activate" in text
        assert f"  neighbor {peer} route-map PVC-UPSTREAM-IN in" in text
        assert f"  neighbor {peer} route-map PVC-UPSTREAM-OUT out" in text
    assert "  network 10.100.0.0/24" in text
    assert " address-family ipv4 unicast" in text
    assert " address-family ipv6 unicast" not in text  # no IPv6 peer
    assert "route-map PVC-UPSTREAM-IN deny 10" in text
    # the EVPN part is the same as without upstream
    plain = lines(render_bgpd(coordinator()))
    evpn = " address-family l2vpn evpn"
    assert text[text.index(evpn) :][:7] == plain[plain.index(evpn) :][:7]


def test_ipv6_prefixes_go_to_ipv6_peers() -> None:
    params = coordinator(
        upstream=upstream(peers=("10.0.0.254", "fd00::fe"), ipv4_prefixes=(), ipv6_prefixes=("fd10::/64",))
    )
    text = lines(render_bgpd(params))
    v6 = text[text.index(" address-family ipv6 unicast") :]
    assert v6[:3] == [" address-family ipv6 unicast", "  network fd10::/64", "  neighbor fd00::fe activate"]
    v4 = text[text.index(" address-family ipv4 unicast") :]
    assert v4[1] == "  neighbor 10.0.0.254 activate"  # no IPv4 prefix announced
    assert announced_prefixes("\n".join(text)) == {"fd10::/64"}


def test_a_node_without_prefixes_still_peers_upstream() -> None:
    text = render_bgpd(coordinator(upstream=upstream(ipv4_prefixes=())))
    assert " neighbor 10.0.0.254 remote-as 65000" in lines(text)
    assert announced_prefixes(text) == frozenset()


def test_equal_inputs_in_any_order_render_equal_text() -> None:
    one = coordinator(
        coordinators=("10.0.1.1", "10.0.1.2", "10.0.1.3"),
        upstream=upstream(peers=("10.0.0.254", "10.0.0.253"), ipv4_prefixes=("10.100.0.0/24", "10.9.0.0/24")),
    )
    other = coordinator(
        coordinators=["10.0.1.3", "10.0.1.2", "10.0.1.1", "10.0.1.2"],
        upstream=upstream(peers=["10.0.0.253", "10.0.0.254"], ipv4_prefixes=["10.9.0.0/24", "10.100.0.0/24"]),
    )
    assert render_bgpd(one) == render_bgpd(other)
    assert one == other


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"node_name": "hv1\nrouter bgp 1"}, "node_name"),
        ({"node_name": "hv 1"}, "node_name"),
        ({"node_name": ""}, "node_name"),
        ({"router_id": "10.0.1.1\n no bgp default ipv4-unicast"}, "router_id"),
        ({"router_id": "fd00::1"}, "IPv4"),
        ({"router_id": "10.0.2.1"}, "not in the cluster network"),
        ({"router_id": 167772417}, "router_id"),  # an integer is no address here
        ({"cluster_network": "10.0.1.1/24"}, "no host bits"),
        ({"cluster_network": "fd00::/64", "router_id": "fd00::1"}, "IPv4"),
        ({"coordinators": ("10.0.1.1", "10.0.9.9")}, "not in the cluster network"),
        ({"coordinators": "10.0.1.1"}, "a list"),
        ({"coordinators": ("10.0.1.2", "10.0.1.3")}, "own address"),
        ({"asn": 0}, "asn"),
        ({"asn": 4294967295}, "asn"),
        ({"asn": "65000\nrouter bgp 1"}, "asn"),
        ({"asn": True}, "asn"),
        ({"directory": "run/frr"}, "absolute"),
        ({"directory": "/run/frr\nhostname x"}, "absolute"),
        ({"directory": "/run/../etc"}, "absolute"),
        ({"directory": "/" + "d" * 100}, "too long"),
        ({"upstream": "10.0.0.254"}, "UpstreamBgp"),
        ({"timers": (1, 3, 1)}, "BgpTimers"),
    ],
)
def test_bad_values_are_refused_naming_them(changes: dict, message: str) -> None:
    with pytest.raises(FrrConfigError, match=re.escape(message)):
        coordinator(**changes)


def test_a_client_listed_as_coordinator_and_one_without_coordinators_are_refused() -> None:
    with pytest.raises(FrrConfigError, match="not a coordinator"):
        client(router_id="10.0.1.2")
    with pytest.raises(FrrConfigError, match="at least one coordinator"):
        client(coordinators=())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"peers": ()}, "at least one"),
        ({"peers": ("fe80::1%eth0\nrouter bgp 1",)}, "scope"),
        ({"peers": ("10.0.0.254 remote-as 1",)}, "not an IP address"),
        ({"asn": -1}, "upstream.asn"),
        ({"ipv4_prefixes": ("10.100.0.1/24",)}, "no host bits"),
        ({"ipv4_prefixes": ("10.100.0.0/24\nnetwork 0.0.0.0/0",)}, "no host bits"),
        ({"ipv4_prefixes": ("fd10::/64",)}, "not an IPv4 prefix"),
        ({"ipv6_prefixes": ("fd10::%x/64",)}, "scope"),
        ({"ipv6_prefixes": ("fd10::/64",)}, "no IPv6 upstream peer"),
        ({"update_source": "10.0.0.10/24"}, "update_source"),
    ],
)
def test_bad_upstream_values_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(FrrConfigError, match=re.escape(message)):
        upstream(**changes)


def test_an_upstream_peer_that_is_a_cluster_node_is_refused() -> None:
    with pytest.raises(FrrConfigError, match="is a cluster node"):
        coordinator(upstream=upstream(peers=("10.0.1.2",)))


@pytest.mark.parametrize(
    "timers",
    [
        {"keepalive": 0},
        {"hold": 70000},
        {"connect": 0},
        {"keepalive": 10, "hold": 20},
        {"hold": 9.5},
        {"coalesce_ms": 0},
        {"coalesce_ms": "100\nrouter bgp 1"},
    ],
)
def test_bad_timers_are_refused(timers: dict) -> None:
    with pytest.raises(FrrConfigError, match="timers"):
        BgpTimers(**timers)


#: Every line a rendered bgpd.conf may hold: nothing else, whatever the input.
LINE = re.compile(
    r"frr defaults datacenter|hostname [a-zA-Z0-9][a-zA-Z0-9_.-]*|log stdout informational|!|exit"
    r"|router bgp \d+| bgp router-id [\d.]+| no bgp default ipv4-unicast| bgp network import-check"
    r"| coalesce-time \d+| bgp cluster-id [\d.]+| bgp listen range [\d./]+ peer-group NODES| !"
    r"| neighbor [\w.:]+ (peer-group|remote-as \d+|timers \d+ \d+|timers connect \d+"
    r"|peer-group \w+|update-source [\w.:]+)"
    r"| address-family (ipv4 unicast|ipv6 unicast|l2vpn evpn)| exit-address-family"
    r"|  network [\w.:/]+|  neighbor [\w.:]+ (activate|route-map PVC-UPSTREAM-(IN in|OUT out)"
    r"|route-reflector-client)|  advertise-all-vni|  advertise-svi-ip"
    r"|route-map PVC-UPSTREAM-IN deny 10|route-map PVC-UPSTREAM-OUT permit 10"
)

TEXT = st.text(alphabet=string.printable + "%\u2028\x85", max_size=40)
ADDRESS_LIKE = st.one_of(
    TEXT,
    st.ip_addresses().map(str),
    st.builds(lambda a, junk: f"{a}%{junk}", st.ip_addresses(v=6).map(str), TEXT),
    st.builds(lambda a, junk: f"{a}{junk}", st.sampled_from(["10.0.1.9", "10.0.0.254", "fd10::"]), TEXT),
)


def _one_changed(field: str, value: str) -> FrrParams:
    """Valid parameters with one value, of any of the kinds given by a user, replaced."""
    if field == "node_name":
        return coordinator(node_name=value)
    if field == "router_id":
        return client(router_id=value)
    if field == "coordinator":
        return client(coordinators=(value, "10.0.1.1"))
    if field == "peer":
        return coordinator(upstream=upstream(peers=(value, "fd00::fe"), ipv4_prefixes=()))
    if field == "source":
        return coordinator(upstream=upstream(update_source=value))
    return coordinator(upstream=upstream(peers=("fd00::fe",), ipv4_prefixes=(), ipv6_prefixes=(value,)))


@settings(max_examples=500, deadline=None)
@given(
    field=st.sampled_from(["node_name", "router_id", "coordinator", "peer", "source", "prefix"]),
    value=st.one_of(ADDRESS_LIKE, st.builds(lambda a: f"{a}/128", ADDRESS_LIKE)),
)
def test_nothing_given_adds_a_line_of_its_own(field: str, value: str) -> None:
    try:
        params = _one_changed(field, value)
    except FrrConfigError:
        return
    for line in lines(render_bgpd(params)) + lines(render_zebra(params)):
        assert LINE.fullmatch(line), line


def test_only_prefix_changes_are_applied_live() -> None:
    before = coordinator(upstream=upstream(peers=("10.0.0.254", "fd00::fe"), ipv6_prefixes=("fd10::/64",)))
    after = replace(
        before, upstream=replace(before.upstream, ipv4_prefixes=("10.101.0.0/24",), ipv6_prefixes=())
    )
    assert prefix_change_commands(render_bgpd(before), render_bgpd(after)) == [
        "configure terminal",
        "router bgp 65500",
        "address-family ipv4 unicast",
        "no network 10.100.0.0/24",
        "network 10.101.0.0/24",
        "exit-address-family",
        "address-family ipv6 unicast",
        "no network fd10::/64",
        "exit-address-family",
        "end",
    ]
    # prefixes that stay are declared again: one missing from the running bgpd comes back
    kept = replace(after, upstream=replace(after.upstream, ipv4_prefixes=("10.101.0.0/24", "10.102.0.0/24")))
    assert prefix_change_commands(render_bgpd(after), render_bgpd(kept)) == [
        "configure terminal",
        "router bgp 65500",
        "address-family ipv4 unicast",
        "network 10.101.0.0/24",
        "network 10.102.0.0/24",
        "exit-address-family",
        "end",
    ]
    other_timers = replace(after, timers=LAB_TIMERS)
    assert prefix_change_commands(render_bgpd(after), render_bgpd(other_timers)) is None
    no_upstream = replace(before, upstream=None)
    assert prefix_change_commands(render_bgpd(before), render_bgpd(no_upstream)) is None


def _vtysh_parses(text: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "check.conf"
    path.write_text(text)
    return subprocess.run(["vtysh", "-C", "-f", str(path)], capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(shutil.which("vtysh") is None, reason="needs FRR's vtysh")
@pytest.mark.parametrize(
    "params",
    [
        coordinator(),
        client(timers=LAB_TIMERS),
        coordinator(coordinators=("10.0.1.1",)),
        coordinator(
            upstream=upstream(
                peers=("10.0.0.254", "fd00::fe"), ipv6_prefixes=("fd10::/64",), update_source="10.0.0.10"
            )
        ),
    ],
    ids=["coordinator", "client", "lone-coordinator", "upstream"],
)
def test_frr_itself_accepts_what_is_rendered(params: FrrParams, tmp_path) -> None:
    for text in (render_bgpd(params), render_zebra(params)):
        checked = _vtysh_parses(text, tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(shutil.which("vtysh") is None, reason="needs FRR's vtysh")
def test_the_frr_check_catches_a_bad_line(tmp_path) -> None:
    checked = _vtysh_parses(render_bgpd(coordinator()) + "router bgp 65500\n no such command\n", tmp_path)
    assert checked.returncode != 0
