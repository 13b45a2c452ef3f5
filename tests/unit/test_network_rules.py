"""Client network checks that need no cluster: definitions, addresses, ACL text and order."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.network import validation
from pvc.cluster.network.acls import arrange
from pvc.cluster.network.rules import MAX_RULE_LENGTH, check_rule_text, checked_rule
from pvc.cluster.vm.xml_policy import check_network_bridges, network_vnis
from pvc.state.networks import Acl, Network

MANAGED = Network(
    vni=100,
    type="managed",
    description="web",
    domain="Web.Example.com",
    name_servers=["10.0.0.1"],
    ip4_network="10.100.0.0/24",
    ip4_gateway="10.100.0.1",
    dhcp4=True,
    dhcp4_start="10.100.0.100",
    dhcp4_end="10.100.0.199",
    ip6_network="2001:db8:100::/64",
    ip6_gateway="2001:db8:100::1",
)


def test_a_good_managed_network_is_normalised() -> None:
    checked = validation.check_network(MANAGED)
    assert checked.domain == "web.example.com" and checked.dhcp6 is True


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"ip4_network": "10.100.0.0/31", "ip4_gateway": "10.100.0.1"}, "too small"),
        ({"ip4_network": "10.100.0.0"}, "no prefix length"),
        ({"ip4_network": "2001:db8::/64"}, "not an IPv4 subnet"),
        ({"ip4_gateway": ""}, "needs a gateway"),
        ({"ip4_gateway": "10.100.0.0"}, "network address"),
        ({"dhcp4_end": ""}, "dhcp4_start, dhcp4_end"),
        ({"dhcp4": False}, "only for a network with dhcp4 on"),
        ({"dhcp4_end": "10.100.0.255"}, "broadcast"),
        ({"ip6_network": "2001:db8:100::1/64"}, "did you mean 2001:db8:100::/64"),
        ({"ip6_gateway": "10.0.0.1"}, "not an IPv6 address"),
        ({"ip6_network": "", "ip6_gateway": ""}, None),
        ({"domain": "a..b"}, "not a valid DNS name"),
        ({"domain": "-a.b"}, "not a valid DNS name"),
        ({"name_servers": ["dns.example.com"]}, "is not an IP address"),
        ({"description": ".hidden"}, "is invalid"),
        ({"type": "routed"}, "managed or bridged"),
        ({"mtu": 575}, "MTU '575' is invalid"),
    ],
)
def test_network_checks(change: dict, words: str | None) -> None:
    wanted = replace(MANAGED, **change)
    if words is None:
        validation.check_network(wanted)
        return
    with pytest.raises(ClusterError, match=words):
        validation.check_network(wanted)


def test_an_ipv4_only_managed_network_without_dhcp_needs_no_domain() -> None:
    plain = replace(
        MANAGED, domain="", dhcp4=False, dhcp4_start="", dhcp4_end="", ip6_network="", ip6_gateway=""
    )
    assert validation.check_network(plain).dhcp6 is False
    with pytest.raises(ClusterError, match="IPv6"):
        validation.check_network(replace(plain, ip6_network="2001:db8::/64", ip6_gateway="2001:db8::1"))


def test_overlaps_only_count_among_managed_networks() -> None:
    bridged = Network(vni=5, type="bridged", description="v5")
    assert validation.check_network(MANAGED, [bridged])
    other = replace(MANAGED, vni=101, description="other", ip6_network="", ip6_gateway="")
    with pytest.raises(ClusterError, match=re.escape("overlaps 10.100.0.0/24 of network 101")):
        validation.check_network(MANAGED, [other])
    apart = replace(other, ip4_network="10.101.0.0/24")
    assert validation.check_network(MANAGED, [apart])


@pytest.mark.parametrize("value", ["0", "16777216", "-1", "1.5", "", "²", None])
def test_bad_vnis(value) -> None:
    with pytest.raises(ClusterError, match="VNI"):
        validation.parse_vni(value)


def test_vni_and_mtu_bounds() -> None:
    assert validation.parse_vni("16777215") == 16777215 and validation.parse_vni(1) == 1
    assert validation.parse_mtu("") is None and validation.parse_mtu("9000") == 9000
    with pytest.raises(ClusterError, match="VLAN id"):
        validation.check_network(Network(vni=4095, type="bridged", description="b"))


@pytest.mark.parametrize(
    ("mac", "result"),
    [
        ("52-54-00-AA-BB-CC", "52:54:00:aa:bb:cc"),
        ("52:54:00:aa:bb:cc", "52:54:00:aa:bb:cc"),
        ("01:00:5e:00:00:01", "multicast"),
        ("ff:ff:ff:ff:ff:ff", "multicast"),
        ("00:00:00:00:00:00", "not a client"),
        ("52:54:00-aa:bb:cc", "is invalid"),
        ("52:54:00:aa:bb", "is invalid"),
    ],
)
def test_mac_addresses(mac: str, result: str) -> None:
    if ":" in result:
        assert validation.normalise_mac(mac) == result
        return
    with pytest.raises(ClusterError, match=result):
        validation.normalise_mac(mac)


def test_reservation_addresses() -> None:
    assert validation.check_reservation_address(MANAGED, " 10.100.0.5 ") == "10.100.0.5"
    for address, words in (("10.100.0.1", "gateway"), ("10.100.1.1", "not inside"), ("x", "not an IP")):
        with pytest.raises(ClusterError, match=words):
            validation.check_reservation_address(MANAGED, address)
    with pytest.raises(ClusterError, match="does not serve DHCPv4"):
        validation.check_reservation_address(replace(MANAGED, dhcp4=False), "10.100.0.5")


@pytest.mark.parametrize(
    "rule",
    [
        "tcp dport 22 accept",
        "ip saddr { 10.0.0.0/8, 192.168.0.0/16 } tcp dport { 80, 443 } counter accept",
        "ip6 daddr 2001:db8::/64 icmpv6 type echo-request accept",
        "meta l4proto udp udp dport 53 accept",
    ],
)
def test_rules_in_the_safe_subset_pass(rule: str) -> None:
    assert check_rule_text(f"  {rule} ") == rule


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("", "empty"),
        ("accept; flush ruleset", "may not contain ';'"),
        ("accept # note", "may not contain '#'"),
        ("accept\ndrop", "not printable ASCII"),
        ("accept\tdrop", "not printable ASCII"),
        ("ip saddr 10.0.0.1 accept é", "not printable ASCII"),
        ('meta comment "x" accept', "may not contain"),
        ("tcp dport 22 \\", "may not contain"),
        ("tcp dport { 22, 80 accept", "unclosed"),
        ("tcp dport 22 } accept {", "never opened"),
        ("jump input", "may not use 'jump'"),
        ("GOTO forward", "may not use 'GOTO'"),
        ("tcp dport 22 queue num 1", "may not use 'queue'"),
        ("add rule inet filter input accept", "may not use 'add'"),
        ("x" * (MAX_RULE_LENGTH + 1), "at most 512"),
    ],
)
def test_rules_outside_the_safe_subset_are_refused(rule: str, words: str) -> None:
    with pytest.raises(ClusterError, match=words):
        check_rule_text(rule)


def test_the_rule_checker_hook_refuses_with_its_reason() -> None:
    def checker(rule: str) -> None:
        raise RuntimeError(f"nft says no to '{rule}'")

    with pytest.raises(ClusterError, match="nft says no to 'accept'"):
        checked_rule("accept", checker)
    assert checked_rule("accept", lambda _: None) == "accept"


def _acl(name: str, direction: str, order: int) -> Acl:
    return Acl(description=name, direction=direction, order=order, rule="accept")


def _orders(acls: list[Acl]) -> list[tuple[str, str, int]]:
    return [(a.description, a.direction, a.order) for a in acls]


def test_arrange_keeps_orders_one_to_n() -> None:
    acls = [_acl("a", "in", 1), _acl("b", "in", 2), _acl("c", "in", 3), _acl("x", "out", 1)]
    assert _orders(arrange(acls, "n", _acl("n", "in", 0), 2)) == [
        ("a", "in", 1), ("n", "in", 2), ("b", "in", 3), ("c", "in", 4), ("x", "out", 1),
    ]  # fmt: skip
    assert _orders(arrange(acls, "n", _acl("n", "in", 0), 99))[3] == ("n", "in", 4)
    assert _orders(arrange(acls, "n", _acl("n", "out", 0), None))[-1] == ("n", "out", 2)
    assert _orders(arrange(acls, "b", None, None)) == [("a", "in", 1), ("c", "in", 2), ("x", "out", 1)]
    moved = arrange(acls, "c", _acl("c", "in", 3), 1)
    assert _orders(moved)[:3] == [("c", "in", 1), ("a", "in", 2), ("b", "in", 3)]
    across = arrange(acls, "a", _acl("a", "out", 1), 1)
    assert _orders(across) == [("b", "in", 1), ("c", "in", 2), ("a", "out", 1), ("x", "out", 2)]


def test_vm_bridges_of_pvc_networks_must_be_defined() -> None:
    assert network_vnis(["vmbr100", "br7", "virbr0", "vmbr", "vmbr12x", "bond0"]) == {100}
    check_network_bridges(["vmbr100", "br-storage", "virbr0"], {100})
    with pytest.raises(ClusterError, match="VNI 7, 200 is defined"):
        check_network_bridges(["vmbr200", "vmbr7", "vmbr100"], {100})
    check_network_bridges(["vmbr200"], {100}, kept={200})
