"""Disk images into RBD volumes on a real Ceph: qemu-img for every format, librbd for raw streams."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import rbd

from pvc.lab.standalone_ceph import LabCeph
from pvc.storage import upload, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageNotFound
from pvc.storage.images import open_image
from pvc.storage.units import parse_size
from tests.storage.conftest import POOL

MIB = parse_size("1M")


def pattern(size: int) -> bytes:
    """Recognisable data: each 4 KiB block names its own index, with an all-zero MiB in the middle."""
    blocks = b"".join(f"block {i:08d} ".encode().ljust(4096, b".") for i in range(size // 4096))
    return blocks[: MIB * 2] + bytes(MIB) + blocks[MIB * 3 : size]


def read_volume(client: CephClient, name: str, length: int) -> bytes:
    with open_image(client, POOL, name) as image:
        return image.read(0, length)


def allocated(client: CephClient, name: str) -> int:
    """Bytes of the volume that hold data (written extents)."""
    extents: list[int] = []
    with open_image(client, POOL, name) as image:
        image.diff_iterate(0, image.size(), None, lambda _offset, length, exists: extents.append(length))
    return sum(extents)


@pytest.fixture
def volume(ceph_client: CephClient, unique) -> Iterator[str]:
    """A new, empty 8 MiB volume, removed afterwards."""
    name = unique("upload")
    volumes.create(ceph_client, POOL, name, 8 * MIB)
    yield name
    volumes.remove(ceph_client, POOL, name)


@pytest.fixture
def raw_image(tmp_path: Path) -> tuple[Path, bytes]:
    data = pattern(5 * MIB)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    return path, data


def convert(raw: Path, image_format: str) -> Path:
    target = raw.with_suffix(f".{image_format}")
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", image_format, str(raw), str(target)],
        check=True,
        capture_output=True,
    )
    return target


@pytest.mark.parametrize("image_format", ["raw", "qcow2", "vmdk"])
def test_import_image_formats(
    ceph_client: CephClient, volume: str, raw_image: tuple[Path, bytes], image_format: str
) -> None:
    raw, data = raw_image
    source = raw if image_format == "raw" else convert(raw, image_format)
    upload.import_image(ceph_client, POOL, volume, source, image_format, timeout=60)
    assert read_volume(ceph_client, volume, 8 * MIB) == data + bytes(3 * MIB)
    # the volume was written in place, not replaced or resized
    assert volumes.info(ceph_client, POOL, volume).size == 8 * MIB


def test_image_larger_than_volume_is_refused(
    ceph_client: CephClient, unique, raw_image: tuple[Path, bytes]
) -> None:
    raw, _data = raw_image
    name = unique("upload")
    volumes.create(ceph_client, POOL, name, 4 * MIB)
    try:
        with pytest.raises(ValueError, match=r"\(5M\) is larger than volume .* \(4M\)"):
            upload.import_image(ceph_client, POOL, name, convert(raw, "qcow2"), "qcow2")
        with pytest.raises(ValueError, match=r"\(5M\) is larger"):
            upload.import_image(ceph_client, POOL, name, raw, "raw")
        assert allocated(ceph_client, name) == 0
    finally:
        volumes.remove(ceph_client, POOL, name)


def test_import_refusals(
    ceph_lab: LabCeph, ceph_client: CephClient, volume: str, raw_image: tuple[Path, bytes], tmp_path: Path
) -> None:
    raw, _data = raw_image
    with pytest.raises(
        ValueError, match="unknown image format 'iso'; valid formats: raw, qcow2, vmdk, qed, vdi, vpc"
    ):
        upload.import_image(ceph_client, POOL, volume, raw, "iso")
    with pytest.raises(StorageNotFound):
        upload.import_image(ceph_client, POOL, "no-such-volume", raw, "raw")
    with pytest.raises(ValueError, match="not a valid qcow2 image"):
        upload.import_image(ceph_client, POOL, volume, raw, "qcow2")
    # an image may not pull in other host files: a backing file ...
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", "-b", str(raw), "-F", "raw", str(overlay)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(ValueError, match="backing file"):
        upload.import_image(ceph_client, POOL, volume, overlay, "qcow2")
    # ... or a VMDK descriptor's extent elsewhere
    descriptor = tmp_path / "flat.vmdk"
    subprocess.run(
        ["qemu-img", "create", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(descriptor), "1M"],
        check=True,
        capture_output=True,
    )
    with pytest.raises(ValueError, match="extent file"):
        upload.import_image(ceph_client, POOL, volume, descriptor, "vmdk")
    assert allocated(ceph_client, volume) == 0
    # a volume a VM has open is not overwritten
    with ceph_lab.client(timeout=10) as vm, vm.ioctx(POOL) as ioctx:
        image = rbd.Image(ioctx, volume)
        try:
            with pytest.raises(StorageBusy, match="in use"):
                upload.import_image(ceph_client, POOL, volume, raw, "raw")
            with pytest.raises(StorageBusy, match="in use"):
                upload.write_raw(ceph_client, POOL, volume, [b"x"], 1)
        finally:
            image.close()


def test_spool_writes_chunks_and_cleans_up_on_failure(tmp_path: Path) -> None:
    path = upload.spool(iter([b"abc", b"", b"def" * 1000]), tmp_path)
    assert path.parent == tmp_path and path.read_bytes() == b"abc" + b"def" * 1000

    def broken() -> Iterator[bytes]:
        yield b"partial data"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        upload.spool(broken(), tmp_path)
    with pytest.raises(ValueError, match="limit"):
        upload.spool([b"x" * 600, b"x" * 600], tmp_path, limit=1000)
    assert list(tmp_path.iterdir()) == [path]


def test_spool_then_import(ceph_client: CephClient, volume: str, raw_image: tuple[Path, bytes]) -> None:
    raw, data = raw_image
    qcow2 = convert(raw, "qcow2").read_bytes()
    chunks = (qcow2[i : i + 65536] for i in range(0, len(qcow2), 65536))
    spooled = upload.spool(chunks, raw.parent)
    try:
        upload.import_image(ceph_client, POOL, volume, spooled, "qcow2")
    finally:
        spooled.unlink()
    assert read_volume(ceph_client, volume, len(data)) == data


def test_write_raw_round_trip(ceph_client: CephClient, volume: str) -> None:
    data = pattern(5 * MIB) + b"tail"
    # uneven chunks, so blocks are assembled across chunk boundaries
    sizes = [1, 4095, 1_000_000, 3 * MIB, 7]
    chunks, offset = [], 0
    for size in sizes:
        chunks.append(data[offset : offset + size])
        offset += size
    chunks.append(data[offset:])
    assert upload.write_raw(ceph_client, POOL, volume, iter(chunks), len(data)) == len(data)
    assert read_volume(ceph_client, volume, 8 * MIB) == data + bytes(8 * MIB - len(data))


def test_write_raw_refusals(ceph_client: CephClient, volume: str) -> None:
    with pytest.raises(ValueError, match=r"upload \(9M\) is larger than volume .* \(8M\)"):
        upload.write_raw(ceph_client, POOL, volume, [b"x" * MIB] * 9, 9 * MIB)
    assert allocated(ceph_client, volume) == 0
    # more data than announced: stops there
    with pytest.raises(ValueError, match="longer than the declared 10 bytes"):
        upload.write_raw(ceph_client, POOL, volume, [b"0123456789", b"more"], 10)
    # less data than announced: what arrived is written, and the caller hears of it
    with pytest.raises(ValueError, match="ended after 4 of 10 bytes"):
        upload.write_raw(ceph_client, POOL, volume, [b"abcd"], 10)
    assert read_volume(ceph_client, volume, 4) == b"abcd"
    with pytest.raises(StorageNotFound):
        upload.write_raw(ceph_client, POOL, "no-such-volume", [b"x"], 1)
    with pytest.raises(ValueError, match="invalid upload size"):
        upload.write_raw(ceph_client, POOL, volume, [], -1)


def test_rbd_target_escapes_qemu_separators() -> None:
    assert upload.rbd_target("rbd", "vm:disk0", "/etc/ceph/ceph.conf") == (
        r"rbd:rbd/vm\:disk0:conf=\/etc\/ceph\/ceph.conf"
    )
    assert upload.rbd_target("rbd", "d", "/c", user="client.pvc", keyring="/k") == (
        r"rbd:rbd/d:conf=\/c:id=pvc:keyring=\/k"
    )
