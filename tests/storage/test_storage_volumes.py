"""RBD volumes on a real Ceph: lifecycle, copies and clones with their data, in-use protection."""

from __future__ import annotations

import time

import pytest
import rbd

from pvc.lab.standalone_ceph import LabCeph
from pvc.storage import inventory, snapshots, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageError, StorageExists, StorageNotFound
from pvc.storage.images import open_image
from pvc.storage.units import parse_size
from tests.storage.conftest import POOL

GIB = parse_size("1G")
MIB = parse_size("1M")


def write(client: CephClient, name: str, offset: int, data: bytes) -> None:
    with open_image(client, POOL, name, read_only=False) as image:
        image.write(data, offset)
        image.flush()


def read(client: CephClient, name: str, offset: int, length: int) -> bytes:
    with open_image(client, POOL, name) as image:
        return image.read(offset, length)


def test_create_list_info_resize_rename_remove(ceph_client: CephClient, unique) -> None:
    name, new_name = unique("vol"), unique("vol")
    created = volumes.create(ceph_client, POOL, name, parse_size("4G"))
    assert created.size == 4 * GIB
    assert created.size_human == "4G"
    assert created.features == ["deep-flatten", "exclusive-lock", "fast-diff", "layering", "object-map"]
    assert created.parent is None and created.snapshots == 0

    listed = {e.volume.name: e.volume for e in inventory.sweep_pool(ceph_client, POOL)}
    assert listed[name].size == 4 * GIB
    assert volumes.info(ceph_client, POOL, name).id == created.id

    grown = volumes.resize(ceph_client, POOL, name, parse_size("6G"))
    assert grown.size_human == "6G"
    with pytest.raises(StorageError, match="shrink"):
        volumes.resize(ceph_client, POOL, name, parse_size("1G"))
    assert volumes.resize(ceph_client, POOL, name, parse_size("1G"), allow_shrink=True).size == GIB

    volumes.rename(ceph_client, POOL, name, new_name)
    assert not volumes.exists(ceph_client, POOL, name)
    assert volumes.info(ceph_client, POOL, new_name).id == created.id

    volumes.remove(ceph_client, POOL, new_name)
    assert not volumes.exists(ceph_client, POOL, new_name)


def test_create_existing_and_bad_names(ceph_client: CephClient, unique) -> None:
    name = unique("vol")
    volumes.create(ceph_client, POOL, name, MIB)
    try:
        with pytest.raises(StorageExists):
            volumes.create(ceph_client, POOL, name, MIB)
        other = unique("vol")
        volumes.create(ceph_client, POOL, other, MIB)
        with pytest.raises(StorageExists):
            volumes.rename(ceph_client, POOL, other, name)
        volumes.remove(ceph_client, POOL, other)
    finally:
        volumes.remove(ceph_client, POOL, name)
    for bad in ("", "a/b", "a@b", "-x"):
        with pytest.raises(ValueError, match="volume name"):
            volumes.create(ceph_client, POOL, bad, MIB)
    with pytest.raises(ValueError, match="size"):
        volumes.create(ceph_client, POOL, unique("vol"), 0)


def test_larger_than_free_space(ceph_client: CephClient, unique) -> None:
    name = unique("vol")
    with pytest.raises(StorageError, match="free"):
        volumes.create(ceph_client, POOL, name, parse_size("1P"))
    assert not volumes.exists(ceph_client, POOL, name)
    # thin over-provisioning on request
    volumes.create(ceph_client, POOL, name, parse_size("20G"), force=True)
    with pytest.raises(StorageError, match="free"):
        volumes.resize(ceph_client, POOL, name, parse_size("100T"))
    volumes.remove(ceph_client, POOL, name)


def test_unknown_pool_and_volume(ceph_client: CephClient, unique) -> None:
    with pytest.raises(StorageNotFound):
        volumes.create(ceph_client, "no-such-pool", unique("vol"), MIB)
    with pytest.raises(StorageNotFound):
        inventory.sweep_pool(ceph_client, "no-such-pool")
    for call in (volumes.info, volumes.remove, volumes.watchers, volumes.locks):
        with pytest.raises(StorageNotFound):
            call(ceph_client, POOL, "no-such-volume")
    with pytest.raises(StorageNotFound):
        volumes.resize(ceph_client, POOL, "no-such-volume", MIB)
    with pytest.raises(StorageNotFound):
        volumes.rename(ceph_client, POOL, "no-such-volume", unique("vol"))
    with pytest.raises(StorageNotFound):
        volumes.clone(ceph_client, POOL, "no-such-volume", unique("vol"))


def test_clone_is_an_independent_copy(ceph_client: CephClient, unique) -> None:
    source, copy = unique("vol"), unique("vol")
    volumes.create(ceph_client, POOL, source, GIB)
    write(ceph_client, source, 0, b"A" * 4096)
    write(ceph_client, source, 700 * MIB, b"B" * 4096)
    snapshots.create(ceph_client, POOL, source, "before")

    started = time.monotonic()
    copied = volumes.clone(ceph_client, POOL, source, copy)
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"copying a sparse 1 GiB volume took {elapsed:.1f} s"
    assert copied.size == GIB and copied.parent is None and copied.snapshots == 0
    assert read(ceph_client, copy, 0, 4096) == b"A" * 4096
    assert read(ceph_client, copy, 700 * MIB, 4096) == b"B" * 4096
    # later writes to the source do not reach the copy
    write(ceph_client, source, 0, b"C" * 4096)
    assert read(ceph_client, copy, 0, 4) == b"AAAA"
    with pytest.raises(StorageExists):
        volumes.clone(ceph_client, POOL, source, copy)

    volumes.remove(ceph_client, POOL, copy)
    volumes.remove(ceph_client, POOL, source, with_snapshots=True)


def test_clone_from_snapshot_is_copy_on_write(ceph_client: CephClient, unique) -> None:
    source, child = unique("vol"), unique("vol")
    volumes.create(ceph_client, POOL, source, GIB)
    write(ceph_client, source, 0, b"base" * 1024)
    snapshots.create(ceph_client, POOL, source, "gold")
    write(ceph_client, source, 0, b"newr" * 1024)

    started = time.monotonic()
    clone = volumes.clone_from_snapshot(ceph_client, POOL, source, "gold", child)
    elapsed = time.monotonic() - started
    assert elapsed <= 1.0, f"cloning a 1 GiB volume took {elapsed:.2f} s"
    assert clone.parent == {"pool": POOL, "volume": source, "snapshot": "gold"}
    assert read(ceph_client, child, 0, 8) == b"basebase"
    assert snapshots.get(ceph_client, POOL, source, "gold").protected

    # the snapshot (and with it the source) cannot go while the clone depends on it
    with pytest.raises(StorageBusy, match="clones"):
        snapshots.remove(ceph_client, POOL, source, "gold")
    with pytest.raises(StorageBusy, match="clones"):
        volumes.remove(ceph_client, POOL, source, with_snapshots=True)
    with pytest.raises(StorageNotFound):
        volumes.clone_from_snapshot(ceph_client, POOL, source, "no-such-snap", unique("vol"))
    with pytest.raises(StorageExists):
        volumes.clone_from_snapshot(ceph_client, POOL, source, "gold", child)

    volumes.flatten(ceph_client, POOL, child)
    assert volumes.info(ceph_client, POOL, child).parent is None
    assert read(ceph_client, child, 0, 8) == b"basebase"
    volumes.remove(ceph_client, POOL, source, with_snapshots=True)
    volumes.remove(ceph_client, POOL, child)


def test_remove_refuses_snapshots_unless_told(ceph_client: CephClient, unique) -> None:
    name = unique("vol")
    volumes.create(ceph_client, POOL, name, MIB)
    snapshots.create(ceph_client, POOL, name, "s1")
    snapshots.create(ceph_client, POOL, name, "s2")
    with pytest.raises(StorageBusy, match="snapshots: s1, s2"):
        volumes.remove(ceph_client, POOL, name)
    volumes.remove(ceph_client, POOL, name, with_snapshots=True)
    assert not volumes.exists(ceph_client, POOL, name)


def test_in_use_volume_watchers_and_locks(ceph_lab: LabCeph, ceph_client: CephClient, unique) -> None:
    """A second client stands in for a VM that has the volume open and writes to it."""
    name = unique("vol")
    volumes.create(ceph_client, POOL, name, MIB)
    assert volumes.watchers(ceph_client, POOL, name) == []
    assert volumes.locks(ceph_client, POOL, name) == []
    with ceph_lab.client(timeout=10) as vm, vm.ioctx(POOL) as ioctx:
        image = rbd.Image(ioctx, name)
        try:
            image.write(b"x" * 512, 0)
            image.flush()
            assert len(volumes.watchers(ceph_client, POOL, name)) == 1
            held = volumes.locks(ceph_client, POOL, name)
            assert len(held) == 1 and held[0].exclusive and held[0].tag == "internal"
            with pytest.raises(StorageBusy, match="in use"):
                volumes.remove(ceph_client, POOL, name)
            snapshots.create(ceph_client, POOL, name, "live")
            with pytest.raises(StorageBusy, match="in use"):
                snapshots.rollback(ceph_client, POOL, name, "live")
            # the holder is declared dead (fenced): its lock is broken and it is blocklisted
            assert volumes.break_locks(ceph_client, POOL, name) == 1
            assert volumes.locks(ceph_client, POOL, name) == []
        finally:
            image.close()
    volumes.remove(ceph_client, POOL, name, with_snapshots=True)
