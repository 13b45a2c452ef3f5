"""FRR's parameters from a node's configuration and the coordinators' registrations."""

from __future__ import annotations

from pvc.config import parse_config
from pvc.node.net_bgp import coordinator_addresses, frr_params
from pvc.state.networks import Network
from pvc.state.records import NodeRecord, NodeStatic
from tests.helpers import node_config_data


def config(name: str, **bgp):
    data = node_config_data(name, ["n1", "n2", "n3"], "10.0.0.1:2181", index=int(name[1:]))
    data["networks"]["bgp"] = bgp
    return parse_config(data)


def registered(*pairs: tuple[str, str]) -> list[NodeRecord]:
    return [
        NodeRecord(name=name, static=NodeStatic(name=name, cluster_address=address))
        for name, address in pairs
    ]


def test_peers_are_the_registered_coordinators_and_a_coordinator_itself() -> None:
    nodes = registered(("n2", "10.110.0.2"), ("n4", "10.110.0.4"), ("n3", ""))
    assert coordinator_addresses(config("n1"), nodes) == ("10.110.0.1", "10.110.0.2")
    assert coordinator_addresses(config("n4"), nodes) == ("10.110.0.2",)


def test_params_follow_the_configuration_and_announce_upstream_only_when_serving(tmp_path) -> None:
    nodes = registered(("n1", "10.110.0.1"), ("n2", "10.110.0.2"), ("n3", "10.110.0.3"))
    networks = [
        Network(vni=5, type="managed", description="a", ip4_network="10.9.0.0/24", ip4_gateway="10.9.0.1"),
        Network(vni=6, type="bridged", description="b"),
    ]
    cfg = config("n2", keepalive=1, hold=3, connect=1, upstream={"peers": ["10.100.0.254"], "asn": 65001})
    quiet = frr_params(cfg, nodes, networks, serving=False, directory=tmp_path)
    assert (quiet.router_id, quiet.cluster_network, quiet.is_coordinator) == (
        "10.110.0.2",
        "10.110.0.0/24",
        True,
    )
    assert quiet.coordinators == ("10.110.0.1", "10.110.0.2", "10.110.0.3")
    assert (quiet.timers.keepalive, quiet.timers.hold, quiet.timers.connect) == (1, 3, 1)
    assert quiet.upstream is None
    primary = frr_params(cfg, nodes, networks, serving=True, directory=tmp_path)
    assert primary.upstream is not None
    assert primary.upstream.peers == ("10.100.0.254",) and primary.upstream.asn == 65001
    assert primary.upstream.ipv4_prefixes == ("10.9.0.0/24",)
    assert primary.upstream.update_source == "10.100.0.250"
