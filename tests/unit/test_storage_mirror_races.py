"""The Ceph mirror's writes against a second writer that changes the mirror mid-pass.

The boundary faked here is the ZooKeeper store: an in-memory tree with ZooKeeper's rules for
a transaction (all or nothing; create needs the znode absent and its parent present, set and
delete need it present, delete needs it childless). A hook runs before every commit, so a
"second client" can change the tree between a pass's read and its transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pvc.cluster.storage.mirror import Mirror, Scope, publish_scope
from pvc.state import paths
from pvc.state.errors import ConflictError
from pvc.state.store import NOTHING, Commit, Transaction

POOL = "vms"


class TreeStore:
    """The part of :class:`pvc.state.store.Store` the mirror uses, in memory."""

    def __init__(self) -> None:
        self.nodes: dict[str, bytes] = {"/": b""}
        self.before_commit: list[Callable[[TreeStore], None]] = []
        self.commits = 0

    def _parent(self, path: str) -> str:
        return path.rsplit("/", 1)[0] or "/"

    def _has_children(self, path: str) -> bool:
        return any(self._parent(other) == path for other in self.nodes if other != "/")

    def get(self, path: str) -> bytes | None:
        return self.nodes.get(path)

    def exists(self, path: str) -> bool:
        return path in self.nodes

    def children(self, path: str) -> list[str]:
        return sorted(
            other.rsplit("/", 1)[1] for other in self.nodes if other != "/" and self._parent(other) == path
        )

    def ensure(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            self.nodes.setdefault("/" + "/".join(parts[:depth]), b"")

    def delete_tree(self, path: str) -> None:
        """What another client's recursive delete does."""
        for other in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
            del self.nodes[other]

    def commit(self, txn: Transaction) -> Commit:
        if self.before_commit:
            self.before_commit.pop(0)(self)
        self.commits += 1
        after = dict(self.nodes)
        for name, args, _ in txn.ops:
            path = args[0]
            if name == "create":
                ok = path not in after and self._parent(path) in after
                after[path] = args[1]
            elif name == "set_data":
                ok = path in after
                after[path] = args[1]
            else:
                ok = path in after and not any(p.startswith(path + "/") for p in after)
                after.pop(path, None)
            if not ok:
                raise ConflictError(f"transaction failed at {name} {path}")
        self.nodes = after
        return NOTHING


def _volume(name: str, size: int) -> bytes:
    return json.dumps({"pool": POOL, "name": name, "size": size}).encode()


def _ceph(volume_sizes: dict[str, int]) -> dict[str, bytes]:
    """Records as collect() returns them for one pool holding these volumes."""
    records = {
        root: b"" for root in (paths.CEPH_OSDS, paths.CEPH_POOLS, paths.CEPH_VOLUMES, paths.CEPH_SNAPSHOTS)
    }
    records[paths.ceph_pool(POOL)] = json.dumps({"name": POOL}).encode()
    records[paths.ceph_pool_volumes(POOL)] = b""
    records[paths.ceph_pool_snapshots(POOL)] = b""
    for name, size in volume_sizes.items():
        records[paths.ceph_volume(POOL, name)] = _volume(name, size)
        records[paths.ceph_volume_snapshots(POOL, name)] = b""
    return records


def _mirrored(store: TreeStore) -> dict[str, bytes]:
    return {path: value for path, value in store.nodes.items() if path.startswith(paths.CEPH + "/")}


def _removed_by_api(*names: str) -> Callable[[TreeStore], None]:
    def remove(store: TreeStore) -> None:
        for name in names:
            store.delete_tree(paths.ceph_volume(POOL, name))
            store.delete_tree(paths.ceph_volume_snapshots(POOL, name))

    return remove


@pytest.fixture
def store() -> TreeStore:
    return TreeStore()


def test_volumes_removed_by_another_writer_between_read_and_every_transaction(store):
    mirror = Mirror(store)
    mirror.publish(_ceph({"a": 1, "b": 2, "c": 3}))
    # Ceph now has a, b and c resized; meanwhile the API removes a and then b from Ceph and
    # the mirror, one just before each of the pass's transactions
    stale = _ceph({"a": 10, "b": 20, "c": 30})
    store.before_commit = [_removed_by_api("a"), _removed_by_api("b")]
    changes = mirror.publish(stale)  # must not raise
    assert changes.skipped > 0
    assert store.get(paths.ceph_volume(POOL, "c")) == _volume("c", 30)
    assert not store.exists(paths.ceph_volume(POOL, "a"))  # not brought back by the stale pass
    assert not store.exists(paths.ceph_volume(POOL, "b"))
    truth = _ceph({"c": 30})
    mirror.publish(truth)
    assert _mirrored(store) == {path: value for path, value in truth.items()}


def _renamed_by_api(old: str, new: str, size: int) -> Callable[[TreeStore], None]:
    def rename(store: TreeStore) -> None:
        _removed_by_api(old)(store)
        store.nodes[paths.ceph_volume(POOL, new)] = _volume(new, size)
        store.nodes[paths.ceph_volume_snapshots(POOL, new)] = b""

    return rename


def test_volumes_renamed_through_the_api_while_a_pass_writes(store):
    mirror = Mirror(store)
    mirror.publish(_ceph({"old1": 1, "old2": 2}))
    # the pass collected after both renames; the API refreshes the mirror for each rename
    # just before one of the pass's transactions
    truth = _ceph({"new1": 1, "new2": 2})
    store.before_commit = [_renamed_by_api("old1", "new1", 1), _renamed_by_api("old2", "new2", 2)]
    changes = mirror.publish(truth)  # must not raise
    assert changes.skipped > 0
    assert _mirrored(store) == truth
    again = mirror.publish(truth)  # reads the mirror again after a race, finds it right
    assert (again.total, again.skipped) == (0, 0)


def test_a_refresh_through_the_api_tolerates_the_refresher(store):
    Mirror(store).publish(_ceph({"gone": 1}))
    scope = Scope(
        (paths.ceph_volume(POOL, "gone"), paths.ceph_volume_snapshots(POOL, "gone")),
        {},
        (paths.ceph_pool_volumes(POOL), paths.ceph_pool_snapshots(POOL)),
    )
    store.before_commit = [_removed_by_api("gone")]  # the refresher got there first
    publish_scope(store, scope)
    assert not store.exists(paths.ceph_volume(POOL, "gone"))


def test_without_a_race_one_transaction_and_the_next_pass_writes_nothing(store):
    mirror = Mirror(store)
    records = _ceph({"a": 1, "b": 2})
    first = mirror.publish(records)
    assert (first.created, first.skipped, store.commits) == (len(records), 0, 1)
    assert mirror.publish(records).total == 0 and store.commits == 1
