"""From network records to the adapters' inputs (pvc.node.net_inputs)."""

from __future__ import annotations

from pvc.net.netspec import NetKind
from pvc.node.net_inputs import NetworkState, dhcp_network, gateways, translate
from pvc.state.networks import Acl, Network, Reservation


def managed(vni: int = 100, **fields) -> Network:
    values = {
        "vni": vni,
        "type": "managed",
        "description": f"net{vni}",
        "domain": f"n{vni}.test",
        "ip4_network": "10.9.0.0/24",
        "ip4_gateway": "10.9.0.1",
        "dhcp4": True,
        "dhcp4_start": "10.9.0.100",
        "dhcp4_end": "10.9.0.199",
    }
    values.update(fields)
    return Network(**values)


def test_a_managed_network_gets_links_firewall_dhcp_and_gateways_in_acl_order() -> None:
    state = NetworkState(
        managed(ip6_network="fd00:9::/64", ip6_gateway="fd00:9::1", mtu=1400),
        reservations=(Reservation(mac="52:54:00:00:00:01", ip4_address="10.9.0.50", hostname="web"),),
        acls=(
            Acl(description="b", direction="in", order=2, rule="tcp dport 81 drop"),
            Acl(description="a", direction="in", order=1, rule="tcp dport 80 drop"),
            Acl(description="c", direction="out", order=1, rule="udp dport 53 accept"),
        ),
    )
    inputs = translate([state], bridged_ok=False)
    assert [(spec.vni, spec.kind, spec.mtu) for spec in inputs.links] == [(100, NetKind.MANAGED, 1400)]
    (wall,) = inputs.firewall.networks
    assert wall.inbound == ("tcp dport 80 drop", "tcp dport 81 drop")
    assert wall.outbound == ("udp dport 53 accept",)
    assert inputs.gateways == [(100, "10.9.0.1/24"), (100, "fd00:9::1/64")]
    dhcp = inputs.dhcp[100]
    assert (dhcp.dhcp4_start, dhcp.dhcp4_end, dhcp.domain) == ("10.9.0.100", "10.9.0.199", "n100.test")
    assert [(r.mac, r.ip4, r.hostname) for r in dhcp.reservations] == [
        ("52:54:00:00:00:01", "10.9.0.50", "web")
    ]
    assert inputs.problems == {}


def test_bridged_networks_need_a_bridge_device_and_get_no_services() -> None:
    bridged = NetworkState(Network(vni=200, type="bridged", description="vlan200"))
    without = translate([bridged], bridged_ok=False)
    assert without.links == [] and "bridge_device" in without.problems[200]
    carried = translate([bridged], bridged_ok=True)
    assert [(spec.vni, spec.kind) for spec in carried.links] == [(200, NetKind.BRIDGED)]
    assert carried.dhcp == {} and carried.gateways == [] and carried.firewall.networks == ()


def test_dhcp_is_off_without_the_flag_and_absent_without_a_domain() -> None:
    no_flag = dhcp_network(NetworkState(managed(dhcp4=False)))
    assert no_flag is not None and no_flag.dhcp4_start is None
    assert dhcp_network(NetworkState(managed(domain=""))) is None
    assert gateways(managed(ip4_network="", ip4_gateway="")) == []


def test_a_record_the_adapters_refuse_is_a_problem_of_its_network_only() -> None:
    bad = NetworkState(managed(vni=7, domain="bad domain"))
    good = NetworkState(managed(vni=8, ip4_network="10.8.0.0/24", ip4_gateway="10.8.0.1", dhcp4=False))
    inputs = translate([bad, good], bridged_ok=False)
    assert list(inputs.problems) == [7]
    assert [spec.vni for spec in inputs.links] == [8]
