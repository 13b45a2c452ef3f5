"""VM records in ZooKeeper: metadata, desired state and placement, and how they change.

A VM lives under ``/domains/{uuid}``: the znode itself holds :class:`VmMeta`, ``xml``
its domain XML and ``state`` its :class:`VmPlacement` (desired state, assigned node,
last node...). Clients and node daemons both change the placement, always by
compare-and-set through :func:`update_placement`, so no change is lost to a race.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pvc.state import paths, vm_snapshots
from pvc.state.errors import ConflictError, StateError
from pvc.state.records import _Record, decode_json, decode_text, encode
from pvc.state.states import MigrationMethod, Selector, VMState
from pvc.state.store import NOTHING, Commit, Store, Transaction

#: Default longest pause of a live migration, in milliseconds.
DEFAULT_MAX_DOWNTIME_MS = 300
#: How often a compare-and-set update is retried before giving up.
CAS_ATTEMPTS = 20


@dataclass(frozen=True)
class VmMeta(_Record):
    """What PVC keeps about a VM besides its XML: name, placement rules, tags."""

    name: str
    uuid: str
    #: Copied from the XML whenever it is written, so placement needs no XML parsing.
    vcpus: int = 0
    memory_mib: int = 0
    node_limit: list[str] = field(default_factory=list)
    node_selector: str = Selector.NONE
    node_autostart: bool = False
    migration_method: str = MigrationMethod.NONE
    migration_max_downtime: int = DEFAULT_MAX_DOWNTIME_MS
    tags: list[dict] = field(default_factory=list)
    description: str = ""
    profile: str = ""


@dataclass(frozen=True)
class VmPlacement(_Record):
    """Desired state and placement of a VM.

    ``node`` is where the VM belongs now; ``last_node`` is where a temporary
    migration (or a node flush) took it from, so that it can go back.
    """

    state: str = VMState.STOP
    node: str = ""
    last_node: str = ""
    #: The node whose libvirt runs the VM; written by node daemons only ("" = nowhere).
    running_on: str = ""
    failed_reason: str = ""
    #: Power off instead of an ACPI shutdown (``disable`` with force).
    hard: bool = False
    #: Times its node restarted the VM after its QEMU died.
    restarts: int = 0
    changed: float = 0.0
    #: The task that holds the VM while it hands it over to another cluster ("" = none):
    #: nothing changes its state meanwhile, not even with force.
    held_by: str = ""


@dataclass(frozen=True)
class VmRecord:
    """Everything the cluster keeps about one VM."""

    uuid: str
    meta: VmMeta
    placement: VmPlacement
    xml: str


def read_vm(reader: Callable[[str], bytes | None], uuid: str) -> VmRecord | None:
    """Assemble a VM's record through ``reader`` (a cache's or a store's ``data``/``get``);
    None unless its metadata, placement and XML are all there (a cache may not have
    loaded every znode of a new VM yet)."""
    meta = VmMeta.from_mapping(decode_json(reader(paths.domain(uuid))))
    if meta is None:
        return None
    placement = VmPlacement.from_bytes(reader(paths.domain_state(uuid)))
    xml = reader(paths.domain_xml(uuid))
    if placement is None or not xml:
        return None
    return VmRecord(uuid=uuid, meta=meta, placement=placement, xml=decode_text(xml))


def create_vm(store: Store, meta: VmMeta, placement: VmPlacement, xml: str) -> Commit:
    """Create a VM's znodes and its name index entry in one transaction.

    Raises ConflictError when the name or the UUID is taken.
    """
    txn = Transaction()
    txn.create(paths.domain_name(meta.name), meta.uuid)
    txn.create(paths.domain(meta.uuid), encode(meta))
    txn.create(paths.domain_xml(meta.uuid), xml)
    txn.create(paths.domain_state(meta.uuid), encode(replace(placement, changed=time.time())))
    txn.create(paths.domain_console(meta.uuid), b"")
    return store.commit(txn)


def replace_definition(store: Store, meta: VmMeta, meta_version: int, xml: str) -> Commit:
    """Replace a VM's XML and the metadata taken from it, in one transaction.

    ConflictError unless its metadata is still at data version ``meta_version``.
    """
    txn = Transaction()
    txn.set(paths.domain_xml(meta.uuid), xml)
    txn.set(paths.domain(meta.uuid), encode(meta), version=meta_version)
    return store.commit(txn)


def rename_vm(store: Store, old_name: str, meta: VmMeta, meta_version: int, xml: str) -> Commit:
    """Give a VM the name in ``meta``: its name index entry, metadata and XML change together.

    ConflictError when the new name is taken or the metadata is no longer at ``meta_version``.
    """
    txn = Transaction()
    txn.delete(paths.domain_name(old_name))
    txn.create(paths.domain_name(meta.name), meta.uuid)
    txn.set(paths.domain(meta.uuid), encode(meta), version=meta_version)
    txn.set(paths.domain_xml(meta.uuid), xml)
    return store.commit(txn)


def delete_vm(store: Store, uuid: str, name: str) -> Commit:
    """Remove a VM's znodes (its snapshot records too) and name entry in one transaction."""
    txn = Transaction()
    vm_snapshots.add_deletes(txn, store, uuid)
    for path in (paths.domain_console(uuid), paths.domain_state(uuid), paths.domain_xml(uuid)):
        if store.exists(path):
            txn.delete(path)
    txn.delete(paths.domain(uuid))
    txn.delete(paths.domain_name(name))
    return store.commit(txn)


def update_placement(
    store: Store, uuid: str, change: Callable[[VmPlacement], VmPlacement | None]
) -> tuple[VmPlacement | None, Commit]:
    """Apply ``change`` to a VM's placement by compare-and-set, retrying lost races.

    ``change`` gets the current placement and returns the new one, or None to leave it
    as it is. Returns the placement written (None if ``change`` declined) and its commit
    (for a cache to wait for). Raises StateError if the VM does not exist.
    """
    path = paths.domain_state(uuid)
    for _ in range(CAS_ATTEMPTS):
        data, version = store.get_versioned(path)
        if version < 0:
            raise StateError(f"VM {uuid} does not exist")
        current = VmPlacement.from_bytes(data) or VmPlacement()
        wanted = change(current)
        if wanted is None:
            return None, NOTHING
        wanted = replace(wanted, changed=time.time())
        txn = Transaction()
        txn.set(path, encode(wanted), version=version)
        try:
            return wanted, store.commit(txn)
        except ConflictError:
            continue
    raise ConflictError(f"VM {uuid}: its state kept changing; try again")


def write_console(store: Store, uuid: str, text: str) -> Commit:
    """Replace the console tail kept for a VM (the VM must exist)."""
    return store.set(paths.domain_console(uuid), text, create=False)


def vm_of_path(path: str) -> str | None:
    """The UUID of the VM a znode belongs to (``/domains/<uuid>/...``), or None."""
    if not path.startswith(paths.DOMAINS + "/"):
        return None
    return path[len(paths.DOMAINS) + 1 :].split("/", 1)[0]


def affects_vms(path: str) -> bool:
    """Whether a change at ``path`` can change what a node's VM manager does: any VM record
    or node state, but not the frequent keepalives and console copies."""
    return (
        path.startswith((paths.DOMAINS + "/", paths.NODES + "/"))
        and not path.endswith(("/keepalive", "/console"))
        and "/snapshots" not in path
    )


def update_meta(store: Store, uuid: str, change: Callable[[VmMeta], VmMeta]) -> tuple[VmMeta, Commit]:
    """Apply ``change`` to a VM's metadata by compare-and-set (name changes go through rename)."""
    path = paths.domain(uuid)
    for _ in range(CAS_ATTEMPTS):
        data, version = store.get_versioned(path)
        current = VmMeta.from_mapping(decode_json(data))
        if current is None:
            raise StateError(f"VM {uuid} does not exist")
        wanted = change(current)
        txn = Transaction()
        txn.set(path, encode(wanted), version=version)
        try:
            return wanted, store.commit(txn)
        except ConflictError:
            continue
    raise ConflictError(f"VM {uuid}: its metadata kept changing; try again")
