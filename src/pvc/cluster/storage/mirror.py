"""The storage cluster's state mirrored into ZooKeeper, so the API answers from its cache.

Ceph is the source of truth; the primary coordinator refreshes the mirror on a timer
(:mod:`pvc.node.storage_stats`); the API refreshes what it changes at once
(:func:`publish_scope`). :func:`collect` reads everything from Ceph into records keyed by
path (see :mod:`pvc.state.paths`: ``/ceph/status``, ``/ceph/util``, ``/ceph/osds/<id>``,
``/ceph/pools/<pool>``, ``/ceph/volumes/<pool>/<volume>``,
``/ceph/snapshots/<pool>/<volume>/<snapshot>``, ``/ceph/osd_io``); :class:`Mirror` writes
only the differences from what it last wrote, in batched transactions.

Two writers share the mirror (the refresher and the API), so a znode may change between a
writer's read and its transaction: a volume renamed or removed through the API while a pass
runs. A transaction that loses such a race is written again one znode at a time, and every
znode the other writer changed meanwhile is left as that writer made it (``Changes.skipped``):
both writers only ever write what Ceph said, so the next pass, which reads the mirror again,
reconciles it with Ceph. No pass fails on a race.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from pvc.state import paths
from pvc.state.errors import ConflictError
from pvc.state.records import encode
from pvc.state.store import NOTHING, Commit, Store, Transaction
from pvc.storage import inventory, osds, pools, snapshots, status, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageNotFound
from pvc.storage.osd_io import OsdIoRates

#: Subtrees the mirror owns entirely (anything in them that Ceph does not have is removed).
OWNED = (paths.CEPH_OSDS, paths.CEPH_POOLS, paths.CEPH_VOLUMES, paths.CEPH_SNAPSHOTS)
SINGLE = (paths.CEPH_STATUS, paths.CEPH_UTIL, paths.CEPH_OSD_IO)
#: Operations per ZooKeeper transaction (keeps each request well under jute.maxbuffer).
BATCH = 200

Records = dict[str, bytes]


def collect(client: CephClient, io: OsdIoRates | None = None) -> Records:
    """Every mirrored record, read from Ceph now (parents included, with empty values).

    With ``io`` (kept from one collect to the next) also the OSDs' client I/O rates.
    """
    records: Records = {root: b"" for root in OWNED}
    records[paths.CEPH_STATUS] = encode(asdict(status.cluster_status(client)))
    records[paths.CEPH_UTIL] = encode(asdict(status.utilization(client)))
    osd_list = osds.list_osds(client)
    records.update(_osd_records(osd_list))
    if io is not None:
        rates = io.sample(client, [osd.id for osd in osd_list if osd.up])
        records[paths.CEPH_OSD_IO] = encode({str(osd_id): rate for osd_id, rate in rates.items()})
    for pool in pools.list_pools(client):
        records.update(_pool_records(client, pool))
    return records


def _osd_records(osd_list: list[osds.Osd]) -> Records:
    return {paths.ceph_osd(osd.id): encode(asdict(osd)) for osd in osd_list}


def _pool_records(client: CephClient, pool: pools.Pool) -> Records:
    """A pool's record, its volumes and their snapshots (with the parents)."""
    records: Records = {
        paths.ceph_pool(pool.name): encode(asdict(pool)),
        paths.ceph_pool_volumes(pool.name): b"",
        paths.ceph_pool_snapshots(pool.name): b"",
    }
    try:
        found = inventory.sweep_pool(client, pool.name)
    except StorageNotFound:  # the pool went away meanwhile
        return records
    for entry in found:
        records.update(_volume_records(entry.volume, entry.snapshots))
    return records


def _volume_records(volume: volumes.Volume, taken: list[snapshots.Snapshot]) -> Records:
    """A volume's record and its snapshots' (with their parent)."""
    records: Records = {
        paths.ceph_volume(volume.pool, volume.name): encode(volume.to_dict()),
        paths.ceph_volume_snapshots(volume.pool, volume.name): b"",
    }
    for snapshot in taken:
        records[paths.ceph_snapshot(volume.pool, volume.name, snapshot.name)] = encode(snapshot.to_dict())
    return records


@dataclass(frozen=True)
class Scope:
    """Part of the mirror refreshed at once: the subtrees it covers and their records now."""

    roots: tuple[str, ...]
    records: Records
    parents: tuple[str, ...] = ()


def volume_scope(client: CephClient, pool: str, volume: str) -> Scope:
    """One volume and its snapshots as Ceph has them now (nothing if the volume is gone)."""
    roots = (paths.ceph_volume(pool, volume), paths.ceph_volume_snapshots(pool, volume))
    parents = (paths.ceph_pool_volumes(pool), paths.ceph_pool_snapshots(pool))
    try:
        found = inventory.read_volume(client, pool, volume)
    except StorageNotFound:
        return Scope(roots, {}, parents)
    return Scope(roots, _volume_records(found.volume, found.snapshots), parents)


def pool_scope(client: CephClient, pool: str) -> Scope:
    """One pool with its volumes and snapshots (nothing if the pool is gone)."""
    roots = (paths.ceph_pool(pool), paths.ceph_pool_volumes(pool), paths.ceph_pool_snapshots(pool))
    try:
        found = pools.get(client, pool)
    except StorageNotFound:
        return Scope(roots, {})
    return Scope(roots, _pool_records(client, found))


def osd_scope(client: CephClient) -> Scope:
    """Every OSD's record."""
    return Scope((paths.CEPH_OSDS,), {paths.CEPH_OSDS: b"", **_osd_records(osds.list_osds(client))})


def publish_scope(store: Store, scope: Scope) -> Commit:
    """Make the mirror under ``scope.roots`` equal ``scope.records`` now; returns what it wrote.

    Used right after a change made through the API, so the cache shows it at once; the
    primary's refresher reconciles anything else on its next pass.
    """
    for parent in scope.parents:
        if scope.records:
            store.ensure(parent)
    known: Records = {}
    for root in scope.roots:
        known.update(_walk(store, root))
    return _write(store, known, scope.records, keep=())[1]


@dataclass
class Changes:
    """What one :meth:`Mirror.publish` wrote."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    #: Writes left out because another writer had changed the znode meanwhile.
    skipped: int = 0

    @property
    def total(self) -> int:
        """Znodes written (skipped ones not included)."""
        return self.created + self.updated + self.deleted

    def count(self, action: str) -> None:
        """Count one applied ``create``, ``set`` or ``delete``."""
        if action == "create":
            self.created += 1
        elif action == "set":
            self.updated += 1
        else:
            self.deleted += 1


class Mirror:
    """Writes collected records to ZooKeeper, only what differs from the last write.

    The first publish (and any after a failed one) reads the mirrored subtrees from
    ZooKeeper to know what is there. Creates go parents first, deletes children first.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._known: Records | None = None

    def _load(self) -> Records:
        self.store.ensure(paths.CEPH)  # made by the schema; a bare store may lack it
        known: Records = {}
        for path in SINGLE:
            value = self.store.get(path)
            if value is not None:
                known[path] = value
        for root in OWNED:
            known.update(_walk(self.store, root))
        return known

    def publish(self, records: Records) -> Changes:
        """Make the mirror equal ``records`` (as :func:`collect` returns them).

        Other writers (the API refreshing what it just changed) may change the mirror
        meanwhile; what they changed is left to them (see the module docstring) and the
        next publish reads the mirror again instead of trusting what this one wrote.
        """
        known = self._known if self._known is not None else self._load()
        self._known = None  # until this publish has fully succeeded
        changes, _ = _write(self.store, known, records, keep=SINGLE)
        if not changes.skipped:
            self._known = dict(records)
        return changes


def _walk(store: Store, path: str) -> Iterator[tuple[str, bytes]]:
    value = store.get(path)
    if value is None:
        return
    yield path, value
    for child in store.children(path):
        yield from _walk(store, f"{path}/{child}")


def _write(
    store: Store, known: Records, records: Records, *, keep: tuple[str, ...]
) -> tuple[Changes, Commit]:
    """Turn ``known`` into ``records``: creates parents first, deletes children first.

    Paths in ``keep`` are never deleted. A batch that fails because another writer changed
    one of its znodes since ``known`` was read is written again one operation at a time,
    skipping each operation that conflicts: a create of a znode that exists or whose parent
    is gone, a set of a znode that is gone, a delete of one that is gone or has children.
    """
    ops: list[tuple[str, str, bytes]] = [
        ("create" if path not in known else "set", path, records[path])
        for path in sorted(records, key=_depth)
        if known.get(path) != records[path]
    ]
    ops += [
        ("delete", path, b"")
        for path in sorted((p for p in known if p not in records and p not in keep), key=_depth, reverse=True)
    ]
    changes = Changes()
    written = NOTHING
    for start in range(0, len(ops), BATCH):
        batch = ops[start : start + BATCH]
        try:
            written += store.commit(_transaction(batch))
        except ConflictError:
            for op in batch:
                try:
                    written += store.commit(_transaction([op]))
                except ConflictError:
                    changes.skipped += 1
                else:
                    changes.count(op[0])
        else:
            for action, _, _ in batch:
                changes.count(action)
    return changes, written


def _transaction(ops: list[tuple[str, str, bytes]]) -> Transaction:
    txn = Transaction()
    for action, path, value in ops:
        if action == "create":
            txn.create(path, value)
        elif action == "set":
            txn.set(path, value)
        else:
            txn.delete(path)
    return txn


def _depth(path: str) -> tuple[int, str]:
    return path.count("/"), path
