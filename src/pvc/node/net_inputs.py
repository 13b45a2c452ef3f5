"""From the cluster's network records to what each network adapter is given.

Pure: records in, adapter inputs out. A record the adapters refuse (it cannot happen
through the API, but the tree may have been written by hand or by an older version)
becomes a problem sentence for that network; the other networks go on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pvc.net.dnsmasq import DnsmasqError, DnsmasqNetwork, Reservation
from pvc.net.netspec import NetKind, NetworkSpec
from pvc.net.nftables import FirewallError, NetworkFirewall, Ruleset
from pvc.state.networks import Acl, Network
from pvc.state.networks import Reservation as ReservationRecord

MANAGED = "managed"
BRIDGED = "bridged"


@dataclass(frozen=True)
class NetworkState:
    """One network with its reservations and ACLs, as the cache holds them."""

    network: Network
    reservations: tuple[ReservationRecord, ...] = ()
    acls: tuple[Acl, ...] = ()

    @property
    def vni(self) -> int:
        return self.network.vni

    @property
    def managed(self) -> bool:
        return self.network.type == MANAGED


@dataclass
class Inputs:
    """Everything the adapters get for one pass, and what could not be translated."""

    links: list[NetworkSpec] = field(default_factory=list)
    firewall: Ruleset = field(default_factory=Ruleset)
    dhcp: dict[int, DnsmasqNetwork] = field(default_factory=dict)
    #: ``(vni, address/prefix)`` of each managed network's gateways (IPv4 and IPv6).
    gateways: list[tuple[int, str]] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)


def link_spec(state: NetworkState, *, bridged_ok: bool) -> NetworkSpec | None:
    """The links a network needs on this node; None for a bridged network on a node
    without a bridge device."""
    if not state.managed and not bridged_ok:
        return None
    kind = NetKind.MANAGED if state.managed else NetKind.BRIDGED
    return NetworkSpec(state.vni, kind, state.network.mtu)


def gateways(network: Network) -> list[str]:
    """The gateway addresses (``address/prefix``) a managed network's bridge gets on the primary."""
    found = []
    for address, subnet in (
        (network.ip4_gateway, network.ip4_network),
        (network.ip6_gateway, network.ip6_network),
    ):
        if address and subnet:
            prefix = ipaddress.ip_network(subnet, strict=False).prefixlen
            found.append(f"{address}/{prefix}")
    return found


def dhcp_network(state: NetworkState) -> DnsmasqNetwork | None:
    """What dnsmasq serves on a managed network; None when it serves nothing (no domain,
    no gateway: neither DHCP nor DNS can be offered)."""
    network = state.network
    has_gateway = bool(network.ip4_gateway or network.ip6_gateway)
    if not state.managed or not network.domain or not has_gateway:
        return None
    dhcp4 = network.dhcp4 and bool(network.dhcp4_start and network.dhcp4_end)
    return DnsmasqNetwork(
        vni=network.vni,
        domain=network.domain,
        ip4_network=network.ip4_network or None,
        gateway4=network.ip4_gateway or None,
        dhcp4_start=network.dhcp4_start if dhcp4 else None,
        dhcp4_end=network.dhcp4_end if dhcp4 else None,
        ip6_network=network.ip6_network or None,
        gateway6=network.ip6_gateway or None,
        dhcp6=bool(network.dhcp6),
        reservations=tuple(
            Reservation(mac=r.mac, ip4=r.ip4_address, hostname=r.hostname or _host_of(r.mac))
            for r in state.reservations
        ),
        name_servers=tuple(network.name_servers),
    )


def _host_of(mac: str) -> str:
    """The host name a reservation without one gets: its MAC's digits."""
    return "host-" + mac.replace(":", "").lower()


def firewall_of(state: NetworkState) -> NetworkFirewall | None:
    """The ACLs of a managed network in their order (bridged networks are not filtered)."""
    if not state.managed:
        return None

    def ordered(direction: str) -> tuple[str, ...]:
        ordered_acls = sorted(state.acls, key=lambda acl: acl.order)
        return tuple(acl.rule for acl in ordered_acls if acl.direction == direction)

    return NetworkFirewall(state.vni, inbound=ordered("in"), outbound=ordered("out"))


def translate(states: Iterable[NetworkState], *, bridged_ok: bool) -> Inputs:
    """The adapters' inputs for every network in ``states``."""
    inputs = Inputs()
    walls: list[NetworkFirewall] = []
    for state in sorted(states, key=lambda s: s.vni):
        try:
            spec = link_spec(state, bridged_ok=bridged_ok)
            if spec is None:
                inputs.problems[state.vni] = "bridged network, but this node has no networks.bridge_device"
                continue
            wall = firewall_of(state)
            dhcp = dhcp_network(state) if state.managed else None
            found = gateways(state.network) if state.managed else []
        except (ValueError, DnsmasqError, FirewallError) as error:
            inputs.problems[state.vni] = str(error)
            continue
        inputs.links.append(spec)
        if wall is not None:
            walls.append(wall)
        if dhcp is not None:
            inputs.dhcp[state.vni] = dhcp
        inputs.gateways.extend((state.vni, address) for address in found)
    inputs.firewall = Ruleset(tuple(walls))
    return inputs


def vnis_of(states: Sequence[NetworkState]) -> set[int]:
    """The VNIs of ``states``."""
    return {state.vni for state in states}
