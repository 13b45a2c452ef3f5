"""RBD snapshots to files and back: whole images, and the extents changed between two snapshots.

A *full* export is the image as the snapshot holds it, as a raw file (sparse where the image
reads as zeros). A *diff* is the changes from a parent snapshot to the snapshot, in this
format: the line ``PVC-RBD-DIFF 1``, a JSON line ``{"size", "from", "to"}``, then records of
``offset`` and ``length`` (8-byte big-endian each) and a kind byte: ``D`` followed by
``length`` bytes of data, or ``Z`` (the extent reads as zeros: discarded). Both are written
to ``<file>.partial`` and renamed when complete; every file's SHA-256 is returned, to be
checked before an import writes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import rbd

from pvc.storage import volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError, StorageExists, StorageNotFound
from pvc.storage.images import open_image

CHUNK = 4 * 1024 * 1024
DIFF_MAGIC = b"PVC-RBD-DIFF 1\n"
#: The largest volume a diff may describe (1 PiB), and the longest header line it may have.
MAX_SIZE = 2**50
MAX_HEADER = 4096
RECORD = struct.Struct(">QQc")
#: Called with the bytes done so far.
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Exported:
    """One file written by an export: the image's size, the file's size and checksum, and
    how many bytes of image data it carries."""

    volume_size: int
    file_size: int
    sha256: str
    data_bytes: int


def _nothing(_done: int) -> None:
    return None


def _no_follow(path: str, flags: int) -> int:
    """Open without following a symbolic link in the last component (files of backup paths)."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o640)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (as hex)."""
    digest = hashlib.sha256()
    with open(path, "rb", opener=_no_follow) as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _finish(partial: Path, target: Path) -> None:
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    partial.replace(target)


def export_full(
    client: CephClient, pool: str, volume: str, snapshot: str, target: Path, progress: Progress = _nothing
) -> Exported:
    """Write ``pool/volume@snapshot`` to ``target`` as a raw image."""
    partial = target.with_name(target.name + ".partial")
    written = 0
    with (
        open_image(client, pool, volume, snapshot=snapshot) as image,
        open(partial, "xb", opener=_no_follow) as out,
    ):
        size = image.size()
        for offset in range(0, size, CHUNK):
            data = image.read(offset, min(CHUNK, size - offset))
            if data.count(0) == len(data):
                out.seek(len(data), os.SEEK_CUR)  # a hole: reads as zeros
            else:
                out.write(data)
                written += len(data)
            progress(offset + len(data))
        out.truncate(size)
    _finish(partial, target)
    return Exported(size, size, file_sha256(target), written)


def changed_extents(image: rbd.Image, parent: str) -> list[tuple[int, int, bool]]:
    """``(offset, length, has_data)`` of what changed in the open snapshot since ``parent``."""
    found: list[tuple[int, int, bool]] = []
    image.diff_iterate(
        0, image.size(), parent, lambda offset, length, exists: found.append((offset, length, exists))
    )
    return sorted(found)


def export_diff(
    client: CephClient,
    pool: str,
    volume: str,
    snapshot: str,
    parent: str,
    target: Path,
    progress: Progress = _nothing,
) -> Exported:
    """Write the changes of ``pool/volume`` from snapshot ``parent`` to ``snapshot`` to ``target``."""
    partial = target.with_name(target.name + ".partial")
    written = 0
    with (
        open_image(client, pool, volume, snapshot=snapshot) as image,
        open(partial, "xb", opener=_no_follow) as out,
    ):
        if not image.snap_exists(parent):
            raise StorageNotFound(f"snapshot {pool}/{volume}@{parent} does not exist")
        size = image.size()
        out.write(DIFF_MAGIC + json.dumps({"size": size, "from": parent, "to": snapshot}).encode() + b"\n")
        for offset, length, exists in changed_extents(image, parent):
            for start in range(offset, offset + length, CHUNK):
                part = min(CHUNK, offset + length - start)
                if exists:
                    out.write(RECORD.pack(start, part, b"D"))
                    out.write(image.read(start, part))
                    written += part
                else:
                    out.write(RECORD.pack(start, part, b"Z"))
                progress(written)
    _finish(partial, target)
    return Exported(size, target.stat().st_size, file_sha256(target), written)


def diff_header(path: Path) -> dict:
    """The JSON header of a diff file; StorageError if it is not one."""
    with open(path, "rb", opener=_no_follow) as handle:
        if handle.read(len(DIFF_MAGIC)) != DIFF_MAGIC:
            raise StorageError(f"{path.name} is not a PVC RBD diff")
        try:
            header = json.loads(handle.readline(MAX_HEADER))
        except ValueError:
            header = None
    size = header.get("size") if isinstance(header, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_SIZE:
        raise StorageError(f"{path.name} has a malformed header")
    if not isinstance(header.get("from"), str) or not isinstance(header.get("to"), str):
        raise StorageError(f"{path.name} has a malformed header")
    return header


def _records(handle, path: Path, size: int) -> Iterator[tuple[int, int, bytes | None]]:
    while header := handle.read(RECORD.size):
        if len(header) != RECORD.size:
            raise StorageError(f"{path.name} ends inside a record")
        offset, length, kind = RECORD.unpack(header)
        if not 0 < length <= CHUNK or offset + length > size:
            raise StorageError(f"{path.name} has a record at {offset} (+{length}) outside the volume")
        if kind == b"Z":
            yield offset, length, None
        elif kind == b"D":
            data = handle.read(length)
            if len(data) != length:
                raise StorageError(f"{path.name} ends inside a record")
            yield offset, length, data
        else:
            raise StorageError(f"{path.name} has a record of unknown kind {kind!r}")


def import_full(
    client: CephClient, pool: str, volume: str, source: Path, snapshot: str, progress: Progress = _nothing
) -> None:
    """Create ``pool/volume`` from the raw image ``source`` and snapshot it as ``snapshot``;
    StorageExists if the volume exists (nothing is written then). A failure removes the
    volume it created."""
    size = source.stat().st_size
    volumes.create(client, pool, volume, size)
    try:
        with (
            open_image(client, pool, volume, read_only=False) as image,
            open(source, "rb", opener=_no_follow) as handle,
        ):
            offset = 0
            while block := handle.read(CHUNK):
                if block.count(0) != len(block):
                    image.write(block, offset)
                offset += len(block)
                progress(offset)
            image.create_snap(snapshot)
    except BaseException:
        with contextlib.suppress(StorageError):
            volumes.remove(client, pool, volume, with_snapshots=True)
        raise


def import_diff(
    client: CephClient,
    pool: str,
    volume: str,
    source: Path,
    snapshot: str,
    parent: str,
    progress: Progress = _nothing,
) -> None:
    """Apply the diff ``source`` (from ``parent`` to ``snapshot``, as its header must say) to
    ``pool/volume`` and snapshot it as ``snapshot``.

    The volume must have the parent snapshot (StorageNotFound otherwise); it is rolled back
    to it first, so that changes made since do not mix with the diff's. Every record is
    checked against the volume's size before it is written.
    """
    header = diff_header(source)
    if (header["from"], header["to"]) != (parent, snapshot):
        raise StorageError(
            f"{source.name} holds the changes from {header['from']} to {header['to']}, "
            f"not from {parent} to {snapshot}"
        )
    with (
        open_image(client, pool, volume, read_only=False) as image,
        open(source, "rb", opener=_no_follow) as handle,
    ):
        if not image.snap_exists(parent):
            raise StorageNotFound(f"volume {pool}/{volume} has no snapshot {parent}, the diff's parent")
        if image.snap_exists(snapshot):
            raise StorageExists(f"snapshot {pool}/{volume}@{snapshot} already exists")
        image.rollback_to_snap(parent)
        if image.size() != header["size"]:
            image.resize(header["size"])
        handle.readline(MAX_HEADER)  # the magic
        handle.readline(MAX_HEADER)  # the header
        done = 0
        for offset, length, data in _records(handle, source, header["size"]):
            if data is None:
                image.discard(offset, length)
            else:
                image.write(data, offset)
            done += length
            progress(done)
        image.create_snap(snapshot)
