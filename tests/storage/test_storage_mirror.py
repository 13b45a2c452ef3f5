"""The Ceph mirror in ZooKeeper: real Ceph in, real ZooKeeper out; only changes written."""

from __future__ import annotations

import json
from collections.abc import Callable

from pvc.cluster.storage.mirror import Mirror, collect, publish_scope, volume_scope
from pvc.config import StorageSection
from pvc.node.storage_stats import StorageStats
from pvc.state import paths
from pvc.state.store import Commit, Store, Transaction
from pvc.storage import pools, snapshots, status, volumes
from pvc.storage.images import open_image
from pvc.storage.osd_io import OsdIoRates
from tests.helpers import wait_for
from tests.integration.conftest import make_store, store, zk_hosts, zk_server  # noqa: F401
from tests.storage.conftest import POOL


def test_mirror_follows_ceph_and_writes_only_what_changed(store, ceph_client, unique):  # noqa: F811
    mirror = Mirror(store)
    assert mirror.publish(collect(ceph_client)).created > 0
    assert json.loads(store.get(paths.CEPH_STATUS))["fsid"]
    assert store.children(paths.CEPH_OSDS) == ["0"]
    assert POOL in store.children(paths.CEPH_POOLS)

    name = unique("mirror")
    volumes.create(ceph_client, POOL, name, 4 * 2**20)
    snapshots.create(ceph_client, POOL, name, "s1")
    records = collect(ceph_client)
    added = mirror.publish(records)
    assert added.created == 3  # the volume, its snapshot list, the snapshot
    assert json.loads(store.get(paths.ceph_volume(POOL, name)))["size"] == 4 * 2**20
    assert json.loads(store.get(paths.ceph_snapshot(POOL, name, "s1")))["name"] == "s1"
    assert mirror.publish(records).total == 0  # nothing changed, nothing written

    # a new primary's mirror loads what is there: no creates, and strays are removed
    store.set(paths.ceph_volume(POOL, "ghost"), b"{}")
    fresh = Mirror(store).publish(records)
    assert (fresh.created, fresh.deleted) == (0, 1) and not store.exists(paths.ceph_volume(POOL, "ghost"))

    snapshots.remove(ceph_client, POOL, name, "s1")
    volumes.remove(ceph_client, POOL, name)
    gone = mirror.publish(collect(ceph_client))
    assert gone.deleted == 3
    assert not store.exists(paths.ceph_volume(POOL, name))
    assert not store.exists(paths.ceph_volume_snapshots(POOL, name))


def test_the_refresher_publishes_on_its_interval_and_stops(store, ceph_lab):  # noqa: F811
    settings = StorageSection(**ceph_lab.storage_config("node"), stats_interval=0.3, command_timeout=10)
    refresher = StorageStats(store, settings)
    refresher.start()
    try:
        assert refresher.wait_refreshed(2, timeout=30)
    finally:
        refresher.stop()
    assert json.loads(store.get(paths.CEPH_UTIL))
    assert store.children(paths.CEPH_OSDS) == ["0"]
    count = refresher.refreshes
    assert not refresher.wait_refreshed(count + 1, timeout=1.0)  # stopped means stopped


def test_osd_io_rates_follow_client_writes(store, ceph_client, unique):  # noqa: F811
    io = OsdIoRates()
    Mirror(store).publish(collect(ceph_client, io))
    assert json.loads(store.get(paths.CEPH_OSD_IO)) == {}  # first sample: no rates yet
    name = unique("io")
    volumes.create(ceph_client, POOL, name, 8 * 2**20)
    try:
        with open_image(ceph_client, POOL, name, read_only=False) as image:
            for offset in range(0, 8 * 2**20, 2**20):
                image.write(b"x" * 2**20, offset)
            image.flush()
        rates = json.loads(collect(ceph_client, io)[paths.CEPH_OSD_IO])["0"]
    finally:
        volumes.remove(ceph_client, POOL, name)
    assert rates["wr_ops"] > 0 and rates["wr_data"] > 0
    assert set(rates) == {"wr_ops", "wr_data", "rd_ops", "rd_data"}
    # without a sampler the mirror leaves the last rates alone
    assert paths.CEPH_OSD_IO not in collect(ceph_client)


class _RacedStore:
    """A store whose every commit first lets ``hooks`` (one per commit) change ZooKeeper."""

    def __init__(self, zk: Store, hooks: list[Callable[[], None]]) -> None:
        self._store = zk
        self._hooks = hooks

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def commit(self, txn: Transaction) -> Commit:
        if self._hooks:
            self._hooks.pop(0)()
        return self._store.commit(txn)


def _under_pool(path: str) -> bool:
    return path.startswith((paths.ceph_pool_volumes(POOL) + "/", paths.ceph_pool_snapshots(POOL) + "/"))


def _mirrored_volumes(zk: Store) -> dict[str, bytes]:
    """The pool's volume and snapshot records as they are in ZooKeeper."""
    found: dict[str, bytes] = {}
    for root in (paths.ceph_pool_volumes(POOL), paths.ceph_pool_snapshots(POOL)):
        for child in zk.children(root):
            found[f"{root}/{child}"] = zk.get(f"{root}/{child}")
            for grandchild in zk.children(f"{root}/{child}"):
                found[f"{root}/{child}/{grandchild}"] = zk.get(f"{root}/{child}/{grandchild}")
    return found


def test_volumes_renamed_through_the_api_during_a_pass(store, make_store, ceph_client, unique):  # noqa: F811
    """Each rename's API refresh lands between the pass's read of the mirror and a transaction."""
    api_store = make_store()
    names = [unique("race") for _ in range(2)]
    for name in names:
        volumes.create(ceph_client, POOL, name, 2**20)
    mirror = Mirror(store)
    mirror.publish(collect(ceph_client))
    try:
        for name in names:
            volumes.rename(ceph_client, POOL, name, f"{name}-new")
        records = collect(ceph_client)  # the pass has read Ceph after both renames

        def api_refresh(name: str) -> Callable[[], None]:
            def refresh() -> None:  # as StorageOps.rename_volume does, through its own session
                publish_scope(api_store, volume_scope(ceph_client, POOL, name))
                publish_scope(api_store, volume_scope(ceph_client, POOL, f"{name}-new"))

            return refresh

        mirror.store = _RacedStore(store, [api_refresh(name) for name in names])
        changes = mirror.publish(records)  # must not fail
        assert changes.skipped > 0
        mirror.store = store
        truth = collect(ceph_client)
        mirror.publish(truth)
        assert _mirrored_volumes(store) == {path: value for path, value in truth.items() if _under_pool(path)}
        mirrored_names = set(store.children(paths.ceph_pool_volumes(POOL)))
        assert mirrored_names == set(volumes.names(ceph_client, POOL))
        assert {f"{name}-new" for name in names} <= mirrored_names and not set(names) & mirrored_names
    finally:
        for name in names:
            volumes.remove(ceph_client, POOL, f"{name}-new")


def test_each_pool_is_mirrored_with_the_figures_ceph_reports_for_it(store, ceph_client, unique):  # noqa: F811
    """Two pools with different contents: each record matches librados's own figures for that pool."""
    written = {unique("big"): (5, 64 * 2**10), unique("small"): (2, 4 * 2**10)}  # objects, bytes each
    for name in written:
        pools.create(ceph_client, name, 8, "copies=1,mincopies=1")
    try:
        for name, (count, size) in written.items():
            with ceph_client.ioctx(name) as ioctx:
                for index in range(count):
                    ioctx.write_full(f"object-{index}", b"x" * size)

        def ceph_says(name: str) -> dict:
            with ceph_client.ioctx(name) as ioctx:
                return {**ioctx.get_stats(), "id": ioctx.get_pool_id()}

        # the statistics follow the writes within a few OSD reports; rbd_info is the pool's own
        assert wait_for(
            lambda: all(ceph_says(name)["num_objects"] == count + 1 for name, (count, _) in written.items()),
            timeout=60,
        )
        status.wait_fresh_pg_stats(ceph_client)  # df answers from the same statistics now
        Mirror(store).publish(collect(ceph_client))
        mirrored = {name: json.loads(store.get(paths.ceph_pool(name))) for name in written}
        for name in written:
            truth = ceph_says(name)
            record = mirrored[name]
            assert record["id"] == truth["id"], name
            assert record["objects"] == truth["num_objects"], name
            assert record["object_copies"] == truth["num_object_copies"], name
            assert record["object_clones"] == truth["num_object_clones"], name
            assert record["objects_degraded"] == truth["num_objects_degraded"], name
            assert record["objects_unfound"] == truth["num_objects_unfound"], name
            assert record["objects_missing"] == truth["num_objects_missing_on_primary"], name
            assert record["used_bytes"] == truth["num_bytes"], name
            assert record["write_ops"] == truth["num_wr"], name
            assert record["write_bytes"] == truth["num_wr_kb"] * 1024, name
            assert record["read_ops"] == truth["num_rd"], name
        big, small = (mirrored[name] for name in written)
        assert big["objects"] != small["objects"] and big["used_bytes"] > small["used_bytes"]
    finally:
        for name in written:
            pools.remove(ceph_client, name)
