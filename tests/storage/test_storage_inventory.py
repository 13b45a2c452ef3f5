"""Sweeping a pool's volumes and snapshots (one image open each, a few in flight) on a real Ceph."""

from __future__ import annotations

import pytest

from pvc.storage import inventory, pools, snapshots, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageNotFound


def test_sweep_matches_the_one_at_a_time_reads(ceph_client: CephClient, unique) -> None:
    pool = unique("sweep")
    pools.create(ceph_client, pool, 8, "copies=1,mincopies=1")
    try:
        assert inventory.sweep_pool(ceph_client, pool) == []
        names = [unique("vol") for _ in range(5)]
        for number, name in enumerate(names):
            volumes.create(ceph_client, pool, name, (number + 1) * 2**20)
            for snap in range(number % 3):
                snapshots.create(ceph_client, pool, name, f"s{snap}")
        clone = unique("clone")
        volumes.clone_from_snapshot(ceph_client, pool, names[1], "s0", clone)  # protects s0

        swept = inventory.sweep_pool(ceph_client, pool, workers=3)
        assert [entry.volume.name for entry in swept] == sorted([*names, clone])
        for entry in swept:
            name = entry.volume.name
            assert entry.volume == volumes.info(ceph_client, pool, name)
            assert entry.snapshots == snapshots.list_snapshots(ceph_client, pool, name)
        by_name = {entry.volume.name: entry for entry in swept}
        assert [s.name for s in by_name[names[2]].snapshots] == ["s0", "s1"]
        (protected,) = by_name[names[1]].snapshots
        assert protected.protected and protected.children == [f"{pool}/{clone}"]
        assert by_name[clone].volume.parent
        assert inventory.read_volume(ceph_client, pool, names[2]) == by_name[names[2]]
    finally:
        pools.remove(ceph_client, pool)


def test_sweep_skips_volumes_removed_meanwhile(ceph_client: CephClient, unique, monkeypatch) -> None:
    pool = unique("sweep")
    pools.create(ceph_client, pool, 8, "copies=1,mincopies=1")
    try:
        kept = unique("vol")
        volumes.create(ceph_client, pool, kept, 2**20)
        listed = volumes.names(ceph_client, pool)
        monkeypatch.setattr(volumes, "names", lambda client, name: [*listed, "gone-since-listing"])
        assert [entry.volume.name for entry in inventory.sweep_pool(ceph_client, pool)] == [kept]
        with pytest.raises(StorageNotFound):
            inventory.read_volume(ceph_client, pool, "gone-since-listing")
    finally:
        pools.remove(ceph_client, pool)
    monkeypatch.undo()
    with pytest.raises(StorageNotFound):
        inventory.sweep_pool(ceph_client, pool)
