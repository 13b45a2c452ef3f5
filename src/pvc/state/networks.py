"""Client network records in ZooKeeper: networks, DHCP reservations and leases, ACLs.

A network lives under ``/networks/{vni}``: the znode holds its :class:`Network`, and three
children hold its :class:`Reservation`\\ s (keyed by MAC), the dynamic :class:`Lease`\\ s the
primary's DHCP server hands out (keyed by MAC) and its :class:`Acl`\\ s (keyed by
description). Values are validated by :mod:`pvc.cluster.network`; this module only stores
them.

Writers serialise through data versions, compare-and-set: every change of a network's
record also sets the ``/networks`` root at the version it read (so checks across networks,
such as overlapping subnets, cannot race), every change of a reservation or an ACL sets its
parent znode at the version read (so uniqueness and ordering checks cannot race), and both
check the network's record is unchanged. A lost race raises
:class:`~pvc.state.errors.ConflictError` with nothing written; the caller reads again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.records import _Record, decode_json, encode
from pvc.state.store import Commit, Store, Transaction

#: Network types.
MANAGED, BRIDGED = "managed", "bridged"
NETWORK_TYPES = (MANAGED, BRIDGED)
#: ACL directions.
IN, OUT = "in", "out"
DIRECTIONS = (IN, OUT)


@dataclass(frozen=True)
class Network(_Record):
    """A client network. ``mtu`` None means the default of the node's underlying device."""

    vni: int
    type: str
    description: str
    mtu: int | None = None
    domain: str = ""
    name_servers: list[str] = field(default_factory=list)
    ip4_network: str = ""
    ip4_gateway: str = ""
    dhcp4: bool = False
    dhcp4_start: str = ""
    dhcp4_end: str = ""
    ip6_network: str = ""
    ip6_gateway: str = ""
    dhcp6: bool = False


@dataclass(frozen=True)
class Reservation(_Record):
    """A DHCP reservation ("static lease"): the address a MAC always gets."""

    mac: str
    ip4_address: str
    hostname: str = ""


@dataclass(frozen=True)
class Lease(_Record):
    """A dynamic DHCP lease as the DHCP server handed it out; ``expiry`` is a Unix time."""

    mac: str
    ip4_address: str
    hostname: str = ""
    expiry: int = 0
    client_id: str = ""


@dataclass(frozen=True)
class Acl(_Record):
    """A firewall rule of a network: ``order`` is its place (1..n) among its direction's rules."""

    description: str
    direction: str
    order: int
    rule: str


class Reader(Protocol):
    """What reads need: a cache (:class:`pvc.state.cache.ClusterCache`) or :class:`StoreReader`."""

    def data(self, path: str) -> bytes | None: ...

    def version(self, path: str) -> int: ...

    def children(self, path: str) -> list[str]: ...


class StoreReader:
    """Fresh reads from a store, in the :class:`Reader` shape (for checked writes)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def data(self, path: str) -> bytes | None:
        """The znode's data, or None if it does not exist."""
        return self.store.get(path)

    def version(self, path: str) -> int:
        """The znode's data version, or -1 if it does not exist."""
        return self.store.get_versioned(path)[1]

    def children(self, path: str) -> list[str]:
        """The znode's children, sorted (none if it does not exist)."""
        return self.store.children(path)


# -- reads ---------------------------------------------------------------------------------


def vnis(reader: Reader) -> list[int]:
    """The VNIs of every network, in numeric order."""
    return sorted(int(name) for name in reader.children(paths.NETWORKS) if name.isascii() and name.isdigit())


def read_network(reader: Reader, vni: int) -> Network | None:
    """One network's record, or None."""
    return Network.from_mapping(decode_json(reader.data(paths.network(vni))))


def read_networks(reader: Reader) -> list[Network]:
    """Every network's record, by VNI."""
    found = (read_network(reader, vni) for vni in vnis(reader))
    return [network for network in found if network is not None]


def read_reservations(reader: Reader, vni: int) -> list[Reservation]:
    """A network's reservations, by MAC."""
    parent = paths.network_reservations(vni)
    found = (Reservation.from_bytes(reader.data(f"{parent}/{mac}")) for mac in reader.children(parent))
    return [item for item in found if item is not None]


def read_leases(reader: Reader, vni: int) -> list[Lease]:
    """A network's dynamic leases, by MAC."""
    parent = paths.network_leases(vni)
    found = (Lease.from_bytes(reader.data(f"{parent}/{mac}")) for mac in reader.children(parent))
    return [item for item in found if item is not None]


def read_acls(reader: Reader, vni: int) -> list[Acl]:
    """A network's ACLs, by direction and order."""
    parent = paths.network_acls(vni)
    found = (Acl.from_bytes(reader.data(f"{parent}/{name}")) for name in reader.children(parent))
    return sorted((item for item in found if item is not None), key=lambda a: (a.direction, a.order))


@dataclass(frozen=True)
class Versions:
    """The data versions a checked write compares against (-1: absent)."""

    root: int = -1
    network: int = -1
    reservations: int = -1
    acls: int = -1


def read_versions(reader: Reader, vni: int) -> Versions:
    """The versions of the ``/networks`` root and of network ``vni``'s record and parents."""
    return Versions(
        root=reader.version(paths.NETWORKS),
        network=reader.version(paths.network(vni)),
        reservations=reader.version(paths.network_reservations(vni)),
        acls=reader.version(paths.network_acls(vni)),
    )


# -- network writes ------------------------------------------------------------------------


def create_network(store: Store, network: Network, root_version: int) -> Commit:
    """Create a network with empty reservation, lease and ACL lists, in one transaction.

    ConflictError when the VNI exists or another network changed since ``root_version``.
    """
    txn = Transaction()
    txn.set(paths.NETWORKS, b"", version=root_version)
    txn.create(paths.network(network.vni), encode(network))
    for parent in (paths.network_reservations, paths.network_leases, paths.network_acls):
        txn.create(parent(network.vni))
    return store.commit(txn)


def replace_network(store: Store, network: Network, versions: Versions) -> Commit:
    """Replace a network's record; ConflictError unless the root, the record and its
    reservations are still at ``versions`` (a changed subnet was checked against them)."""
    txn = Transaction()
    txn.set(paths.NETWORKS, b"", version=versions.root)
    txn.check(paths.network_reservations(network.vni), versions.reservations)
    txn.set(paths.network(network.vni), encode(network), version=versions.network)
    return store.commit(txn)


def delete_network(store: Store, vni: int, versions: Versions) -> Commit:
    """Remove a network with its reservations, leases and ACLs in one transaction.

    The children are read fresh; ConflictError when anything changed meanwhile (a lease
    written by the DHCP server included: the parent is then not empty).
    """
    txn = Transaction()
    txn.set(paths.NETWORKS, b"", version=versions.root)
    for parent in (paths.network_reservations, paths.network_leases, paths.network_acls):
        path = parent(vni)
        for child in store.children(path):
            txn.delete(f"{path}/{child}")
        if store.exists(path):
            txn.delete(path)
    txn.delete(paths.network(vni), version=versions.network)
    return store.commit(txn)


# -- reservations --------------------------------------------------------------------------


def put_reservation(store: Store, vni: int, reservation: Reservation, versions: Versions) -> Commit:
    """Create or replace a reservation; ConflictError unless the network's record and its
    reservations are still at ``versions``."""
    path = paths.network_reservation(vni, reservation.mac)
    txn = Transaction()
    txn.check(paths.network(vni), versions.network)
    txn.set(paths.network_reservations(vni), b"", version=versions.reservations)
    if store.exists(path):
        txn.set(path, encode(reservation))
    else:
        txn.create(path, encode(reservation))
    return store.commit(txn)


def remove_reservation(store: Store, vni: int, mac: str, versions: Versions) -> Commit:
    """Remove a reservation; ConflictError unless the reservations are still at ``versions``."""
    txn = Transaction()
    txn.set(paths.network_reservations(vni), b"", version=versions.reservations)
    txn.delete(paths.network_reservation(vni, mac))
    return store.commit(txn)


# -- dynamic leases (the primary's DHCP lease hook) ----------------------------------------


def put_lease(
    store: Store,
    vni: int,
    mac: str,
    ip4_address: str,
    *,
    hostname: str = "",
    expiry: int = 0,
    client_id: str = "",
) -> Commit:
    """Record (or renew) the dynamic lease of ``mac`` as the DHCP server handed it out.

    StateError when the network does not exist (its lease list is missing).
    """
    lease = Lease(
        mac=mac.lower(), ip4_address=ip4_address, hostname=hostname, expiry=int(expiry), client_id=client_id
    )
    path = paths.network_lease(vni, lease.mac)
    if not store.exists(paths.network_leases(vni)):
        raise StateError(f"network {vni} does not exist")
    return store.set(path, encode(lease))


def remove_lease(store: Store, vni: int, mac: str) -> Commit:
    """Forget the dynamic lease of ``mac`` (missing is fine)."""
    return store.delete(paths.network_lease(vni, mac.lower()))


# -- ACLs ----------------------------------------------------------------------------------


def write_acls(
    store: Store,
    vni: int,
    versions: Versions,
    *,
    put: Iterable[Acl] = (),
    existing: Iterable[str] = (),
    delete: Iterable[str] = (),
) -> Commit:
    """Apply a change of a network's ACLs in one transaction: ``put`` are written (those whose
    description is in ``existing`` replaced, the others created), ``delete`` are removed.

    ConflictError unless the network's record and its ACLs are still at ``versions``.
    """
    present = set(existing)
    txn = Transaction()
    txn.check(paths.network(vni), versions.network)
    txn.set(paths.network_acls(vni), b"", version=versions.acls)
    for description in delete:
        txn.delete(paths.network_acl(vni, description))
    for acl in put:
        path = paths.network_acl(vni, acl.description)
        if acl.description in present:
            txn.set(path, encode(acl))
        else:
            txn.create(path, encode(acl))
    return store.commit(txn)


def network_of_path(path: str) -> int | None:
    """The VNI of the network a znode belongs to (``/networks/<vni>/...``), or None."""
    if not path.startswith(paths.NETWORKS + "/"):
        return None
    head = path[len(paths.NETWORKS) + 1 :].split("/", 1)[0]
    return int(head) if head.isascii() and head.isdigit() else None


def is_lease_path(path: str) -> bool:
    """Whether ``path`` is a dynamic lease (or the lease list) of some network."""
    vni = network_of_path(path)
    return vni is not None and (
        path == paths.network_leases(vni) or path.startswith(paths.network_leases(vni) + "/")
    )
