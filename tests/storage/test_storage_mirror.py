"""The Ceph mirror in ZooKeeper: real Ceph in, real ZooKeeper out; only changes written."""

from __future__ import annotations

import json

from pvc.cluster.storage.mirror import Mirror, collect
from pvc.config import StorageSection
from pvc.node.storage_stats import StorageStats
from pvc.state import paths
from pvc.storage import snapshots, volumes
from pvc.storage.images import open_image
from pvc.storage.osd_io import OsdIoRates
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
