"""VM snapshot records in ZooKeeper: one znode per snapshot under ``/domains/{uuid}/snapshots``.

A record is created *incomplete* before any RBD snapshot is taken, so that its name is
claimed atomically (two tasks cannot both make ``name``); it is completed with the XML and
the RBD snapshots once every volume has one, or removed when the creation fails. Only
complete records are snapshots a client can roll back to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.records import _Record, encode
from pvc.state.store import Commit, Store, Transaction


class Consistency:
    """How consistent a snapshot's disks are with each other and with the guest."""

    #: The VM was not running: its disks were at rest.
    STOPPED = "stopped"
    #: The guest agent flushed and froze the guest's filesystems for the snapshot.
    QUIESCED = "quiesced"
    #: The VM was paused (every disk at the same instant) but its filesystems were not
    #: flushed: what a power cut leaves.
    CRASH = "crash-consistent"


@dataclass(frozen=True)
class VmSnapshot(_Record):
    """One snapshot of a VM: the domain XML at that moment and an RBD snapshot per volume."""

    name: str
    timestamp: float = 0.0
    xml: str = ""
    #: ``pool/volume@name`` for each RBD volume of the VM when the snapshot was taken.
    rbd_snapshots: list[str] = field(default_factory=list)
    consistency: str = ""
    complete: bool = False
    #: The task that made it (to clean up after a creation whose node died).
    task: str = ""

    @property
    def volumes(self) -> list[tuple[str, str]]:
        """``(pool, volume)`` of each RBD snapshot."""
        return [tuple(spec.split("@", 1)[0].split("/", 1)) for spec in self.rbd_snapshots]


def read_snapshot(reader: Callable[[str], bytes | None], uuid: str, name: str) -> VmSnapshot | None:
    """The record of VM ``uuid``'s snapshot ``name`` through ``reader``, or None."""
    return VmSnapshot.from_bytes(reader(paths.domain_snapshot(uuid, name)))


def read_snapshots(
    reader: Callable[[str], bytes | None], children: Callable[[str], list[str]], uuid: str
) -> list[VmSnapshot]:
    """Every snapshot record of VM ``uuid`` (complete or not), oldest first."""
    found = (read_snapshot(reader, uuid, name) for name in children(paths.domain_snapshots(uuid)))
    return sorted((snap for snap in found if snap is not None), key=lambda snap: (snap.timestamp, snap.name))


def claim(store: Store, uuid: str, name: str, task: str) -> VmSnapshot:
    """Create the incomplete record of snapshot ``name``; ConflictError if the name is taken,
    StateError if the VM does not exist."""
    if not store.exists(paths.domain(uuid)):
        raise StateError(f"VM {uuid} does not exist")
    store.ensure(paths.domain_snapshots(uuid))
    record = VmSnapshot(name=name, timestamp=time.time(), task=task)
    txn = Transaction()
    txn.create(paths.domain_snapshot(uuid, name), encode(record))
    store.commit(txn)
    return record


def complete(store: Store, uuid: str, record: VmSnapshot) -> Commit:
    """Write the finished record (its XML and RBD snapshots)."""
    return store.set(
        paths.domain_snapshot(uuid, record.name), encode(replace(record, complete=True)), create=False
    )


def forget(store: Store, uuid: str, name: str) -> Commit:
    """Remove the record of snapshot ``name`` (missing is fine)."""
    return store.delete(paths.domain_snapshot(uuid, name))


def add_deletes(txn: Transaction, store: Store, uuid: str) -> None:
    """Add the deletion of every snapshot record of VM ``uuid`` (and their parent) to ``txn``."""
    parent = paths.domain_snapshots(uuid)
    if not store.exists(parent):
        return
    for name in store.children(parent):
        txn.delete(paths.domain_snapshot(uuid, name))
    txn.delete(parent)
