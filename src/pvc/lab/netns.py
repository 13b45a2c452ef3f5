"""Network namespaces, the lab bridge and veth links, through iproute2 (:mod:`pvc.net.iproute`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pvc.net.iproute import NetError, ip

__all__ = [
    "NetError",
    "create_bridge",
    "create_node_netns",
    "delete_link",
    "delete_netns",
    "ip",
    "link_exists",
    "netns_exists",
    "netns_pids",
]


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def netns_exists(name: str) -> bool:
    return Path(f"/run/netns/{name}").exists()


def _disable_ipv6(name: str) -> None:
    path = Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6")
    if path.exists():
        path.write_text("1\n")


def create_bridge(name: str, addresses: Sequence[str]) -> None:
    ip("link", "add", name, "type", "bridge")
    _disable_ipv6(name)
    for address in addresses:
        ip("addr", "add", address, "dev", name)
    ip("link", "set", name, "up")


def create_node_netns(
    netns: str,
    host_link: str,
    node_link: str,
    bridge: str,
    addresses: Sequence[str],
    routes: Sequence[tuple[str, str]] = (),
) -> None:
    """A namespace joined to ``bridge`` by a veth pair, with ``addresses`` inside and
    ``routes`` (network, gateway) out of it."""
    ip("netns", "add", netns)
    ip("link", "set", "lo", "up", netns=netns)
    ip("link", "add", host_link, "type", "veth", "peer", "name", node_link, "netns", netns)
    _disable_ipv6(host_link)
    ip("link", "set", host_link, "master", bridge, "up")
    for address in addresses:
        ip("addr", "add", address, "dev", node_link, netns=netns)
    ip("link", "set", node_link, "up", netns=netns)
    for network, gateway in routes:
        ip("route", "add", network, "via", gateway, netns=netns)


def forward_on(bridge: str) -> None:
    """Let the host forward what arrives on ``bridge`` (to another lab's bridge); the
    setting goes with the bridge."""
    Path(f"/proc/sys/net/ipv4/conf/{bridge}/forwarding").write_text("1\n")


def delete_link(name: str) -> None:
    if link_exists(name):
        ip("link", "del", name, check=False)


def delete_netns(name: str) -> None:
    if netns_exists(name):
        ip("netns", "del", name, check=False)


def netns_pids(name: str) -> list[int]:
    """PIDs of processes inside a namespace (empty if it does not exist)."""
    if not netns_exists(name):
        return []
    result = ip("netns", "pids", name, check=False)
    return [int(pid) for pid in result.stdout.split() if pid.isdigit()]
