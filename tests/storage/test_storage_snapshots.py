"""RBD snapshots on a real Ceph: create, list, rename, roll back with data restored, remove."""

from __future__ import annotations

import pytest

from pvc.storage import snapshots, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageExists, StorageNotFound
from pvc.storage.units import parse_size
from tests.storage.conftest import POOL
from tests.storage.test_storage_volumes import read, write

MIB = parse_size("1M")


def test_create_list_rename_rollback_remove(ceph_client: CephClient, unique) -> None:
    name = unique("vol")
    volumes.create(ceph_client, POOL, name, 4 * MIB)
    write(ceph_client, name, 0, b"one!" * 256)
    first = snapshots.create(ceph_client, POOL, name, "first")
    assert (first.name, first.size, first.protected, first.children) == ("first", 4 * MIB, False, [])
    write(ceph_client, name, 0, b"two!" * 256)
    snapshots.create(ceph_client, POOL, name, "second")
    assert [s.name for s in snapshots.list_snapshots(ceph_client, POOL, name)] == ["first", "second"]
    assert volumes.info(ceph_client, POOL, name).snapshots == 2

    with pytest.raises(StorageExists):
        snapshots.create(ceph_client, POOL, name, "first")
    with pytest.raises(StorageExists):
        snapshots.rename(ceph_client, POOL, name, "second", "first")
    snapshots.rename(ceph_client, POOL, name, "first", "original")
    assert [s.name for s in snapshots.list_snapshots(ceph_client, POOL, name)] == ["original", "second"]

    write(ceph_client, name, 0, b"bad!" * 256)
    snapshots.rollback(ceph_client, POOL, name, "original")
    assert read(ceph_client, name, 0, 8) == b"one!one!"
    snapshots.rollback(ceph_client, POOL, name, "second")
    assert read(ceph_client, name, 0, 8) == b"two!two!"

    snapshots.remove(ceph_client, POOL, name, "original")
    snapshots.remove(ceph_client, POOL, name, "second")
    assert snapshots.list_snapshots(ceph_client, POOL, name) == []
    volumes.remove(ceph_client, POOL, name)


def test_remove_with_children_refused(ceph_client: CephClient, unique) -> None:
    name, child = unique("vol"), unique("vol")
    volumes.create(ceph_client, POOL, name, MIB)
    snapshots.create(ceph_client, POOL, name, "base")
    volumes.clone_from_snapshot(ceph_client, POOL, name, "base", child)
    snap = snapshots.get(ceph_client, POOL, name, "base")
    assert snap.protected and snap.children == [f"{POOL}/{child}"]
    with pytest.raises(StorageBusy, match=child):
        snapshots.remove(ceph_client, POOL, name, "base")
    volumes.remove(ceph_client, POOL, child)
    # protected but childless: unprotected and removed
    snapshots.remove(ceph_client, POOL, name, "base")
    volumes.remove(ceph_client, POOL, name)


def test_unknown_snapshot_volume_pool(ceph_client: CephClient, unique) -> None:
    name = unique("vol")
    volumes.create(ceph_client, POOL, name, MIB)
    for call in (snapshots.remove, snapshots.rollback, snapshots.get):
        with pytest.raises(StorageNotFound):
            call(ceph_client, POOL, name, "no-such-snap")
    with pytest.raises(StorageNotFound):
        snapshots.rename(ceph_client, POOL, name, "no-such-snap", "other")
    with pytest.raises(StorageNotFound):
        snapshots.create(ceph_client, POOL, "no-such-volume", "s")
    with pytest.raises(StorageNotFound):
        snapshots.list_snapshots(ceph_client, "no-such-pool", name)
    with pytest.raises(ValueError, match="snapshot name"):
        snapshots.create(ceph_client, POOL, name, "a@b")
    volumes.remove(ceph_client, POOL, name)
