"""Live and stale RBD locks against the session's real Ceph: a second client stands in for a
QEMU that has a VM's disk open (live), or for one that died and left its lock (stale)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import rbd

from pvc.lab.standalone_ceph import LabCeph
from pvc.storage import disk_locks, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageNotFound
from tests.helpers import wait_for
from tests.storage.conftest import POOL

MIB = 1024 * 1024


@contextmanager
def writer(ceph_lab: LabCeph, name: str) -> Iterator[rbd.Image]:
    """A client with ``name`` open read-write holding its exclusive (managed) lock, as QEMU does."""
    with ceph_lab.client(timeout=10) as client, client.ioctx(POOL) as ioctx:
        image = rbd.Image(ioctx, name)
        try:
            image.lock_acquire(rbd.RBD_LOCK_MODE_EXCLUSIVE)
            yield image
        finally:
            image.close()


def leave_advisory_lock(ceph_lab: LabCeph, name: str, cookie: str, *, shared_tag: str = "") -> None:
    """Take an advisory lock and go away without releasing it (a holder that died)."""
    with ceph_lab.client(timeout=10) as client, client.ioctx(POOL) as ioctx:
        image = rbd.Image(ioctx, name)
        try:
            if shared_tag:
                image.lock_shared(cookie, shared_tag)
            else:
                image.lock_exclusive(cookie)
        finally:
            image.close()


def fence(ceph_client: CephClient, address: str) -> None:
    """Blocklist a client, as a fenced node is: the OSDs drop its watches at once."""
    ceph_client.mon_command("osd blocklist", blocklistop="add", addr=address)


@pytest.fixture
def volume(ceph_client: CephClient, unique) -> Iterator[str]:
    name = unique("lockvol")
    volumes.create(ceph_client, POOL, name, MIB)
    yield name
    disk_locks.flush(ceph_client, POOL, name)
    volumes.remove(ceph_client, POOL, name)


def test_an_unlocked_volume_has_nothing_to_break(ceph_client: CephClient, volume: str) -> None:
    assert disk_locks.split_locks(ceph_client, POOL, volume) == ([], [])
    assert disk_locks.clear_stale(ceph_client, POOL, volume) == 0
    assert disk_locks.flush(ceph_client, POOL, volume) == 0
    for call in (disk_locks.split_locks, disk_locks.clear_stale, disk_locks.flush):
        with pytest.raises(StorageNotFound):
            call(ceph_client, POOL, "no-such-volume")


def test_a_writers_lock_is_live_kept_by_clear_stale_and_broken_by_flush(
    ceph_lab: LabCeph, ceph_client: CephClient, volume: str
) -> None:
    with writer(ceph_lab, volume):
        live, stale = disk_locks.split_locks(ceph_client, POOL, volume)
        assert stale == [] and len(live) == 1
        assert live[0].tag == "internal" and live[0].cookie.startswith("auto ")
        assert live[0].address in {w.address for w in volumes.watchers(ceph_client, POOL, volume)}
        assert disk_locks.clear_stale(ceph_client, POOL, volume) == 0
        assert volumes.locks(ceph_client, POOL, volume) == live
        assert disk_locks.flush(ceph_client, POOL, volume) == 1
        assert volumes.locks(ceph_client, POOL, volume) == []


def test_only_locks_held_from_the_given_host_are_broken(
    ceph_lab: LabCeph, ceph_client: CephClient, volume: str
) -> None:
    """What a fence does to a VM that was migrating away from the fenced node."""
    with writer(ceph_lab, volume):
        [lock] = volumes.locks(ceph_client, POOL, volume)
        host = lock.address.split("/")[0].rsplit(":", 1)[0].split(":", 1)[-1]
        assert disk_locks.break_held_from(ceph_client, POOL, volume, "10.255.255.1") == 0
        assert volumes.locks(ceph_client, POOL, volume) == [lock]
        assert disk_locks.break_held_from(ceph_client, POOL, volume, host) == 1
        assert volumes.locks(ceph_client, POOL, volume) == []


def test_a_lock_whose_holder_went_away_is_stale(
    ceph_lab: LabCeph, ceph_client: CephClient, volume: str
) -> None:
    leave_advisory_lock(ceph_lab, volume, "gone")
    assert volumes.watchers(ceph_client, POOL, volume) == []
    live, stale = disk_locks.split_locks(ceph_client, POOL, volume)
    assert live == [] and [lock.cookie for lock in stale] == ["gone"]
    assert disk_locks.clear_stale(ceph_client, POOL, volume) == 1
    assert volumes.locks(ceph_client, POOL, volume) == []
    assert disk_locks.clear_stale(ceph_client, POOL, volume) == 0


def test_a_fenced_writers_lock_turns_stale(ceph_lab: LabCeph, ceph_client: CephClient, volume: str) -> None:
    """A QEMU on a node that was fenced: its managed lock stays, its watch is dropped."""
    with writer(ceph_lab, volume):
        (lock,), _ = disk_locks.split_locks(ceph_client, POOL, volume)
        fence(ceph_client, lock.address)
        wait_for(lambda: volumes.watchers(ceph_client, POOL, volume) == [], 10)
        live, stale = disk_locks.split_locks(ceph_client, POOL, volume)
        assert live == [] and stale == [lock]
        assert disk_locks.clear_stale(ceph_client, POOL, volume) == 1
        assert volumes.locks(ceph_client, POOL, volume) == []


def test_shared_locks_are_told_apart_by_holder(
    ceph_lab: LabCeph, ceph_client: CephClient, volume: str
) -> None:
    leave_advisory_lock(ceph_lab, volume, "dead", shared_tag="t")
    with ceph_lab.client(timeout=10) as client, client.ioctx(POOL) as ioctx:
        image = rbd.Image(ioctx, volume)
        try:
            image.lock_shared("alive", "t")
            live, stale = disk_locks.split_locks(ceph_client, POOL, volume)
            assert [lock.cookie for lock in live] == ["alive"]
            assert [lock.cookie for lock in stale] == ["dead"]
            assert disk_locks.clear_stale(ceph_client, POOL, volume) == 1
            assert [lock.cookie for lock in volumes.locks(ceph_client, POOL, volume)] == ["alive"]
            assert disk_locks.flush(ceph_client, POOL, volume) == 1
            assert volumes.locks(ceph_client, POOL, volume) == []
        finally:
            image.close()
