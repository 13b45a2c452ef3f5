"""RBD snapshots to files and back, over the session's real Ceph: a full image and a diff
exported, imported into new volumes, and compared byte for byte."""

from __future__ import annotations

import hashlib
import os

import pytest
import rbd

from pvc.storage import image_transfer, volumes
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage.errors import StorageError, StorageExists, StorageNotFound
from tests.storage.conftest import POOL

MIB = 1024 * 1024


def write(ceph_client, volume: str, offset: int, data: bytes, pool: str = POOL) -> None:
    """Write ``data`` into a volume at ``offset``."""
    with ceph_client.ioctx(pool) as ioctx, rbd.Image(ioctx, volume) as image:
        image.write(data, offset)


def image_sha(ceph_client, volume: str, snapshot: str | None = None, pool: str = POOL) -> str:
    """SHA-256 of a volume's bytes (at ``snapshot``, when given)."""
    digest = hashlib.sha256()
    with (
        ceph_client.ioctx(pool) as ioctx,
        rbd.Image(ioctx, volume, snapshot=snapshot, read_only=True) as image,
    ):
        for offset in range(0, image.size(), 4 * MIB):
            digest.update(image.read(offset, min(4 * MIB, image.size() - offset)))
    return digest.hexdigest()


@pytest.fixture
def made(ceph_client, unique):
    names: list[str] = []

    def name(prefix: str) -> str:
        names.append(unique(prefix))
        return names[-1]

    yield name
    for volume in names:
        if volumes.exists(ceph_client, POOL, volume):
            volumes.remove(ceph_client, POOL, volume, with_snapshots=True)


def test_a_full_export_and_a_diff_rebuild_the_volume_exactly(ceph_client, made, tmp_path):
    source = made("xfer-src")
    volumes.create(ceph_client, POOL, source, 128 * MIB)
    write(ceph_client, source, 0, b"boot sector" + os.urandom(3 * MIB))
    write(ceph_client, source, 100 * MIB, os.urandom(MIB))
    rbd_snapshots.create(ceph_client, POOL, source, "full1")

    full = image_transfer.export_full(ceph_client, POOL, source, "full1", tmp_path / "full1.img")
    assert full.volume_size == full.file_size == 128 * MIB
    assert full.sha256 == image_sha(ceph_client, source, "full1")
    assert full.data_bytes <= 8 * MIB  # zeros are holes, not data
    assert os.stat(tmp_path / "full1.img").st_blocks * 512 < 16 * MIB

    # 16 MiB change, part of it a discard, and the volume grows
    write(ceph_client, source, 40 * MIB, os.urandom(16 * MIB))
    with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, source) as image:
        image.discard(100 * MIB, MIB)
        image.resize(160 * MIB)
    rbd_snapshots.create(ceph_client, POOL, source, "inc1")
    diff = image_transfer.export_diff(ceph_client, POOL, source, "inc1", "full1", tmp_path / "inc1.diff")
    assert diff.data_bytes >= 16 * MIB and diff.file_size <= 17 * MIB, diff
    assert image_transfer.diff_header(tmp_path / "inc1.diff") == {
        "size": 160 * MIB,
        "from": "full1",
        "to": "inc1",
    }

    copy = made("xfer-copy")
    image_transfer.import_full(ceph_client, POOL, copy, tmp_path / "full1.img", "full1")
    assert image_sha(ceph_client, copy, "full1") == full.sha256
    write(ceph_client, copy, 0, b"changed after the import")  # discarded by the diff's rollback
    image_transfer.import_diff(ceph_client, POOL, copy, tmp_path / "inc1.diff", "inc1", "full1")
    assert image_sha(ceph_client, copy, "inc1") == image_sha(ceph_client, source, "inc1")
    assert image_sha(ceph_client, copy) == image_sha(ceph_client, source, "inc1")


def test_imports_refuse_what_does_not_fit_and_leave_nothing_half_made(ceph_client, made, tmp_path):
    source = made("xfer-bad")
    volumes.create(ceph_client, POOL, source, 16 * MIB)
    write(ceph_client, source, 0, b"data")
    rbd_snapshots.create(ceph_client, POOL, source, "a")
    write(ceph_client, source, MIB, b"more")
    rbd_snapshots.create(ceph_client, POOL, source, "b")
    image_transfer.export_diff(ceph_client, POOL, source, "b", "a", tmp_path / "b.diff")

    orphan = made("xfer-orphan")  # a volume without the diff's parent
    volumes.create(ceph_client, POOL, orphan, 16 * MIB)
    with pytest.raises(StorageNotFound, match="has no snapshot a, the diff's parent"):
        image_transfer.import_diff(ceph_client, POOL, orphan, tmp_path / "b.diff", "b", "a")
    assert rbd_snapshots.list_snapshots(ceph_client, POOL, orphan) == []

    with pytest.raises(StorageExists):  # the volume exists: nothing is written over it
        image_transfer.import_full(ceph_client, POOL, orphan, tmp_path / "b.diff", "x")

    cut = tmp_path / "cut.diff"
    cut.write_bytes((tmp_path / "b.diff").read_bytes()[:-2])
    target = made("xfer-target")
    volumes.create(ceph_client, POOL, target, 16 * MIB)
    rbd_snapshots.create(ceph_client, POOL, target, "a")
    with pytest.raises(StorageError, match="ends inside a record"):
        image_transfer.import_diff(ceph_client, POOL, target, cut, "b", "a")
    assert [s.name for s in rbd_snapshots.list_snapshots(ceph_client, POOL, target)] == ["a"]
    (tmp_path / "junk.diff").write_bytes(b"not a diff")
    with pytest.raises(StorageError, match="is not a PVC RBD diff"):
        image_transfer.import_diff(ceph_client, POOL, target, tmp_path / "junk.diff", "b", "a")
    with pytest.raises(StorageError, match="not from x to b"):  # the diff is of other snapshots
        image_transfer.import_diff(ceph_client, POOL, target, tmp_path / "b.diff", "b", "x")
    # a record pointing outside the volume (or longer than a chunk) is refused before it is written
    header = (tmp_path / "b.diff").read_bytes().split(b"\n", 2)
    for offset, length in ((16 * MIB, 4096), (0, 5 * MIB)):
        hostile = tmp_path / "hostile.diff"
        hostile.write_bytes(
            header[0] + b"\n" + header[1] + b"\n" + image_transfer.RECORD.pack(offset, length, b"Z")
        )
        with pytest.raises(StorageError, match="outside the volume"):
            image_transfer.import_diff(ceph_client, POOL, target, hostile, "b", "a")
    huge = tmp_path / "huge.diff"
    huge.write_bytes(image_transfer.DIFF_MAGIC + b'{"size": 1e30, "from": "a", "to": "b"}\n')
    with pytest.raises(StorageError, match="malformed header"):
        image_transfer.import_diff(ceph_client, POOL, target, huge, "b", "a")
