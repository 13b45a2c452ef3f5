"""Client networks as clients see them (PVC v1 shapes), from the cache: networks, leases, ACLs."""

from __future__ import annotations

from collections import Counter

from pvc.cluster.errors import NotFoundError
from pvc.cluster.filters import limit_pattern
from pvc.cluster.session import Cluster
from pvc.state import networks as records
from pvc.state.networks import Acl, Lease, Network, Reader, Reservation

#: The ``timestamp`` of a reservation in a lease list (PVC v1 spells it so).
STATIC = "static"


def resolve(reader: Reader, net: int | str) -> Network:
    """The network with VNI ``net``, or described ``net``; NotFoundError (404) otherwise."""
    text = str(net).strip()
    if text.isascii() and text.isdigit():
        network = records.read_network(reader, int(text))
        if network is not None:
            return network
    for network in records.read_networks(reader):
        if network.description == text:
            return network
    raise NotFoundError(f"Network '{net}' not found")


def network_view(network: Network) -> dict:
    """One network in the v1 shape (``mtu`` null while the nodes' default applies)."""
    return {
        "vni": network.vni,
        "description": network.description,
        "type": network.type,
        "mtu": network.mtu,
        "domain": network.domain,
        "name_servers": list(network.name_servers),
        "ip4": {
            "network": network.ip4_network,
            "gateway": network.ip4_gateway,
            "dhcp_flag": network.dhcp4,
            "dhcp_start": network.dhcp4_start,
            "dhcp_end": network.dhcp4_end,
        },
        "ip6": {"network": network.ip6_network, "gateway": network.ip6_gateway, "dhcp_flag": network.dhcp6},
    }


def list_networks(cluster: Cluster, limit: str | None = None) -> list[dict]:
    """``GET /network``: every network whose VNI or description matches ``limit`` (a regular
    expression with implied wildcards, as the VM and pool lists take it)."""
    pattern = limit_pattern(limit) if limit else None
    return [
        network_view(network)
        for network in records.read_networks(cluster.cache)
        if pattern is None or pattern.fullmatch(str(network.vni)) or pattern.fullmatch(network.description)
    ]


def get_network(cluster: Cluster, net: int | str) -> dict:
    """``GET /network/{vni}``'s element."""
    return network_view(resolve(cluster.cache, net))


def network_counts(cluster: Cluster) -> dict[str, int]:
    """How many networks the cluster has, by type, plus ``total``."""
    types = Counter(network.type for network in records.read_networks(cluster.cache))
    return {"total": sum(types.values()), **{kind: types.get(kind, 0) for kind in records.NETWORK_TYPES}}


# -- leases --------------------------------------------------------------------------------


def reservation_view(reservation: Reservation) -> dict:
    """A reservation in the v1 lease shape."""
    return {
        "hostname": reservation.hostname,
        "ip4_address": reservation.ip4_address,
        "mac_address": reservation.mac,
        "timestamp": STATIC,
    }


def lease_view(lease: Lease) -> dict:
    """A dynamic lease in the v1 lease shape (``timestamp``: when it expires, Unix time)."""
    return {
        "hostname": lease.hostname,
        "ip4_address": lease.ip4_address,
        "mac_address": lease.mac,
        "timestamp": lease.expiry,
    }


def list_leases(
    cluster: Cluster, net: int | str, limit: str | None = None, static: bool = False
) -> list[dict]:
    """``GET /network/{vni}/lease``: the reservations, then (unless ``static``) the dynamic
    leases, whose MAC address, IP address or host name matches ``limit``."""
    network = resolve(cluster.cache, net)
    pattern = limit_pattern(limit) if limit else None
    views = [reservation_view(r) for r in records.read_reservations(cluster.cache, network.vni)]
    if not static:
        views += [lease_view(lease) for lease in records.read_leases(cluster.cache, network.vni)]
    if pattern is None:
        return views
    keys = ("mac_address", "ip4_address", "hostname")
    return [view for view in views if any(pattern.fullmatch(str(view[key])) for key in keys)]


def get_lease(cluster: Cluster, net: int | str, mac: str) -> dict:
    """``GET /network/{vni}/lease/{mac}``'s element: the dynamic lease of ``mac``, else its
    reservation; NotFoundError when it has neither."""
    network = resolve(cluster.cache, net)
    wanted = mac.strip().lower().replace("-", ":")
    for lease in records.read_leases(cluster.cache, network.vni):
        if lease.mac == wanted:
            return lease_view(lease)
    for reservation in records.read_reservations(cluster.cache, network.vni):
        if reservation.mac == wanted:
            return reservation_view(reservation)
    raise NotFoundError(f"Network {network.vni} has no lease or reservation for MAC address '{mac}'")


# -- ACLs ----------------------------------------------------------------------------------


def acl_view(acl: Acl) -> dict:
    """An ACL in the v1 shape."""
    return {"description": acl.description, "direction": acl.direction, "order": acl.order, "rule": acl.rule}


def list_acls(
    cluster: Cluster, net: int | str, limit: str | None = None, direction: str | None = None
) -> list[dict]:
    """``GET /network/{vni}/acl``: ACLs by direction (in, then out) and order, those whose
    description matches ``limit`` and in ``direction`` when given."""
    network = resolve(cluster.cache, net)
    pattern = limit_pattern(limit) if limit else None
    return [
        acl_view(acl)
        for acl in records.read_acls(cluster.cache, network.vni)
        if (direction is None or acl.direction == direction)
        and (pattern is None or pattern.fullmatch(acl.description))
    ]


def get_acl(cluster: Cluster, net: int | str, description: str) -> dict:
    """``GET /network/{vni}/acl/{description}``: one ACL (an object, as v1 answers)."""
    network = resolve(cluster.cache, net)
    for acl in records.read_acls(cluster.cache, network.vni):
        if acl.description == description:
            return acl_view(acl)
    raise NotFoundError(f"Network {network.vni} has no ACL '{description}'")
