"""A received volume is settled before its mirror is used as a VM: rolled back to the
mirror's last complete snapshot when a later send changed it, untouched otherwise."""

from __future__ import annotations

import io
import os
import zlib

import pytest
import rbd

from pvc.storage import receive, volumes
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage.errors import StorageBusy, StorageError, StorageNotFound
from tests.storage.conftest import POOL
from tests.storage.test_image_transfer import MIB, write


def head(ceph_client, volume: str) -> bytes:
    with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, volume, read_only=True) as image:
        return image.read(0, 6)


def batch(data: bytes) -> list[bytes]:
    return [receive.EXTENT.pack(0, len(data)) + data]


def test_settle_rolls_back_only_what_a_later_send_changed(ceph_client, new_volume):
    disk = new_volume()
    volumes.set_metadata(ceph_client, POOL, disk, receive.OWNER, "vm1")
    write(ceph_client, disk, 0, b"first!")
    rbd_snapshots.create(ceph_client, POOL, disk, "s1")
    assert receive.settle(ceph_client, POOL, disk, "s1") is False  # nothing came after s1

    # a batch of s2 arrived and the send was cut off
    receive.receive_extents(ceph_client, "vm1", POOL, disk, "s2", "s1", batch(b"second"))
    assert receive.is_partial(ceph_client, POOL, disk) == "s2" and head(ceph_client, disk) == b"second"
    assert receive.settle(ceph_client, POOL, disk, "s1") is True
    assert head(ceph_client, disk) == b"first!" and receive.is_partial(ceph_client, POOL, disk) is None

    # s2 arrived and was sealed, but the VM's configuration naming it never did
    receive.receive_extents(ceph_client, "vm1", POOL, disk, "s2", "s1", batch(b"second"), send="t2")
    receive.seal(ceph_client, "vm1", POOL, disk, "s2")
    assert receive.is_partial(ceph_client, POOL, disk) is None and head(ceph_client, disk) == b"second"
    assert receive.settle(ceph_client, POOL, disk, "s1") is True
    assert head(ceph_client, disk) == b"first!"
    with pytest.raises(StorageNotFound):
        receive.settle(ceph_client, POOL, disk, "s9")


def test_a_whole_image_is_kept_only_when_its_crc_matches(ceph_client, unique):
    data = os.urandom(3 * MIB + 5)
    crc = f"{zlib.crc32(data):08x}"
    good, bad, short = unique("recv"), unique("recv"), unique("recv")
    try:
        stream = io.BytesIO(data)
        received = receive.receive_image(ceph_client, "vm1", POOL, good, "s1", len(data), stream, crc)
        assert received == crc
        assert receive.is_partial(ceph_client, POOL, good) == "s1"  # until it is sealed
        receive.seal(ceph_client, "vm1", POOL, good, "s1")
        assert receive.is_partial(ceph_client, POOL, good) is None
        with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, good, read_only=True) as image:
            assert image.read(0, len(data)) == data

        with pytest.raises(StorageError, match="does not match its checksum"):
            receive.receive_image(ceph_client, "vm1", POOL, bad, "s1", len(data), io.BytesIO(data), "0bad")
        with pytest.raises(StorageError, match="not the 9 bytes announced"):
            receive.receive_image(ceph_client, "vm1", POOL, short, "s1", 9, io.BytesIO(b"only5"))
        assert not volumes.exists(ceph_client, POOL, bad) and not volumes.exists(ceph_client, POOL, short)
    finally:
        for name in (good, bad, short):
            if volumes.exists(ceph_client, POOL, name):
                volumes.remove(ceph_client, POOL, name, with_snapshots=True)


def test_two_sends_at_once_never_mix_the_later_one_wins(ceph_client, new_volume):
    disk = new_volume()
    volumes.set_metadata(ceph_client, POOL, disk, receive.OWNER, "vm1")
    write(ceph_client, disk, 0, b"first!")
    rbd_snapshots.create(ceph_client, POOL, disk, "s1")

    def batch_of(send: str, snapshot: str, index: int, offset: int, data: bytes) -> int:
        extent = receive.EXTENT.pack(offset, len(data)) + data
        return receive.receive_extents(
            ceph_client, "vm1", POOL, disk, snapshot, "s1", [extent], send=send, index=index
        )

    batch_of("tx", "s2", 0, 0, b"xxxxxx")
    batch_of("ty", "s3", 0, 8, b"yyyyyy")  # another send begins: from s1 afresh, tx's write gone
    with pytest.raises(StorageBusy, match="another send"):
        batch_of("tx", "s2", 1, 16, b"xxxxxx")
    batch_of("ty", "s3", 1, 16, b"zzzzzz")
    with pytest.raises(StorageError, match="nothing of snapshot s2 was received"):
        receive.seal(ceph_client, "vm1", POOL, disk, "s2")
    receive.seal(ceph_client, "vm1", POOL, disk, "s3")
    with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, disk, "s3", read_only=True) as image:
        assert image.read(0, 22) == b"first!\0\0yyyyyy\0\0zzzzzz"
