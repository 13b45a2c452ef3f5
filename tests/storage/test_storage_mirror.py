"""The Ceph mirror in ZooKeeper: real Ceph in, real ZooKeeper out; only changes written."""

from __future__ import annotations

import json

from pvc.cluster.storage_mirror import Mirror, collect
from pvc.config import StorageSection
from pvc.node.storage_stats import StorageStats
from pvc.state import paths
from pvc.storage import snapshots, volumes
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
    settings = StorageSection(ceph_conf=ceph_lab.conf_path, stats_interval=0.3, command_timeout=10)
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
