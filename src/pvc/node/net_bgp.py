"""This node's FRR parameters: from its configuration and the coordinators' registrations.

Every node peers with every coordinator over the cluster network; coordinators are the
route reflectors. A coordinator's cluster address is the one it registered with
(:attr:`pvc.state.records.NodeStatic.cluster_address`), so a node joining or leaving
changes nothing by hand. The primary also announces the managed networks' subnets to the
configured upstream routers, from the upstream floating address.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pvc.config import NodeConfig
from pvc.net.frr_config import BgpTimers, FrrParams, UpstreamBgp
from pvc.state.networks import Network
from pvc.state.records import NodeRecord


def coordinator_addresses(config: NodeConfig, nodes: Iterable[NodeRecord]) -> tuple[str, ...]:
    """The cluster addresses of the configured coordinators that have registered (and this
    node's own, when it is one)."""
    found = {
        node.static.cluster_address
        for node in nodes
        if node.name in config.coordinators and node.static.cluster_address
    }
    if config.is_coordinator:
        found.add(str(config.networks.cluster.address.ip))
    return tuple(sorted(found))


def upstream(config: NodeConfig, networks: Iterable[Network]) -> UpstreamBgp | None:
    """What the primary announces upstream: every managed network's subnets, to each
    configured upstream router; None without upstream routers."""
    routers = config.networks.bgp.upstream
    if routers is None:
        return None
    managed = [network for network in networks if network.type == "managed"]
    floating = config.networks.upstream.floating_address
    versions = {peer.version for peer in routers.peers}
    return UpstreamBgp(
        peers=tuple(str(peer) for peer in routers.peers),
        asn=routers.asn,
        ipv4_prefixes=tuple(n.ip4_network for n in managed if n.ip4_network) if 4 in versions else (),
        ipv6_prefixes=tuple(n.ip6_network for n in managed if n.ip6_network) if 6 in versions else (),
        update_source=str(floating.ip) if floating else None,
    )


def frr_params(
    config: NodeConfig,
    nodes: Iterable[NodeRecord],
    networks: Iterable[Network],
    *,
    serving: bool,
    directory: Path,
) -> FrrParams:
    """FRR's parameters on this node now (``serving``: it is the acting primary)."""
    bgp = config.networks.bgp
    cluster = config.networks.cluster.address
    return FrrParams(
        node_name=config.node.name,
        router_id=str(cluster.ip),
        cluster_network=str(cluster.network),
        coordinators=coordinator_addresses(config, nodes),
        is_coordinator=config.is_coordinator,
        directory=str(directory),
        asn=bgp.asn,
        timers=BgpTimers(keepalive=bgp.keepalive, hold=bgp.hold, connect=bgp.connect),
        upstream=upstream(config, networks) if serving else None,
    )
