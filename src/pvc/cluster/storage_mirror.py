"""The storage cluster's state mirrored into ZooKeeper, so the API answers from its cache.

Ceph is the source of truth; the primary coordinator refreshes the mirror on a timer
(:mod:`pvc.node.storage_stats`). :func:`collect` reads everything from Ceph into
records keyed by path (see :mod:`pvc.state.paths`: ``/ceph/status``, ``/ceph/util``,
``/ceph/osds/<id>``, ``/ceph/pools/<pool>``, ``/ceph/volumes/<pool>/<volume>``,
``/ceph/snapshots/<pool>/<volume>/<snapshot>``); :class:`Mirror` writes only the
differences from what it last wrote, in batched transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

from pvc.state import paths
from pvc.state.records import encode
from pvc.state.store import Store
from pvc.storage import osds, pools, snapshots, status, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageNotFound

#: Subtrees the mirror owns entirely (anything in them that Ceph does not have is removed).
OWNED = (paths.CEPH_OSDS, paths.CEPH_POOLS, paths.CEPH_VOLUMES, paths.CEPH_SNAPSHOTS)
SINGLE = (paths.CEPH_STATUS, paths.CEPH_UTIL)
#: Operations per ZooKeeper transaction (keeps each request well under jute.maxbuffer).
BATCH = 200

Records = dict[str, bytes]


def collect(client: CephClient) -> Records:
    """Every mirrored record, read from Ceph now (parents included, with empty values)."""
    records: Records = {root: b"" for root in OWNED}
    records[paths.CEPH_STATUS] = encode(asdict(status.cluster_status(client)))
    records[paths.CEPH_UTIL] = encode(asdict(status.utilization(client)))
    for osd in osds.list_osds(client):
        records[paths.ceph_osd(osd.id)] = encode(asdict(osd))
    for pool in pools.list_pools(client):
        records[paths.ceph_pool(pool.name)] = encode(asdict(pool))
        records[paths.ceph_pool_volumes(pool.name)] = b""
        records[paths.ceph_pool_snapshots(pool.name)] = b""
        try:
            found = volumes.list_volumes(client, pool.name)
        except StorageNotFound:  # the pool went away meanwhile
            continue
        for volume in found:
            records[paths.ceph_volume(pool.name, volume.name)] = encode(volume.to_dict())
            records[paths.ceph_volume_snapshots(pool.name, volume.name)] = b""
            if not volume.snapshots:
                continue
            try:
                taken = snapshots.list_snapshots(client, pool.name, volume.name)
            except StorageNotFound:
                continue
            for snapshot in taken:
                path = paths.ceph_snapshot(pool.name, volume.name, snapshot.name)
                records[path] = encode(snapshot.to_dict())
    return records


@dataclass
class Changes:
    """What one :meth:`Mirror.publish` wrote."""

    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.deleted


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
            known.update(self._walk(root))
        return known

    def _walk(self, path: str) -> Iterator[tuple[str, bytes]]:
        value = self.store.get(path)
        if value is None:
            return
        yield path, value
        for child in self.store.children(path):
            yield from self._walk(f"{path}/{child}")

    def publish(self, records: Records) -> Changes:
        """Make the mirror equal ``records`` (as :func:`collect` returns them)."""
        known = self._known if self._known is not None else self._load()
        self._known = None  # until this publish has fully succeeded
        changes = Changes()
        ops: list[tuple[str, str, bytes]] = []
        for path in sorted(records, key=_depth):
            if path not in known:
                ops.append(("create", path, records[path]))
                changes.created += 1
            elif known[path] != records[path]:
                ops.append(("set", path, records[path]))
                changes.updated += 1
        for path in sorted(
            (p for p in known if p not in records and p not in SINGLE), key=_depth, reverse=True
        ):
            ops.append(("delete", path, b""))
            changes.deleted += 1
        # A failed batch (ConflictError: someone else changed the mirror) propagates; the
        # next publish reloads what is there first.
        for start in range(0, len(ops), BATCH):
            with self.store.transaction() as txn:
                for action, path, value in ops[start : start + BATCH]:
                    if action == "create":
                        txn.create(path, value)
                    elif action == "set":
                        txn.set(path, value)
                    else:
                        txn.delete(path)
        self._known = dict(records)
        return changes


def _depth(path: str) -> tuple[int, str]:
    return path.count("/"), path
