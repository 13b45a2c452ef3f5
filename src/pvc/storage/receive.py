"""Writing a volume sent from another cluster: a whole image as a stream, or batches of
changed extents, then the snapshot that makes it complete.

Until that snapshot is taken the volume carries the RBD metadata ``pvc.receive.partial``
(naming the snapshot being received), so nothing mistakes it for a finished copy: a whole
image that was cut off is removed by the next attempt, and extents are always applied on
top of the source snapshot (the volume is rolled back to it when a new snapshot's first
batch arrives), so a cut-off batch never mixes into the next one.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from pvc.storage import upload, volumes
from pvc.storage.client import CephClient
from pvc.storage.digest import StreamCrc32
from pvc.storage.errors import StorageBusy, StorageError, StorageExists, StorageNotFound
from pvc.storage.images import open_image

PARTIAL = "pvc.receive.partial"
#: The VM a received volume belongs to: only sends of that VM may write it again.
OWNER = "pvc.receive.vm"
CHUNK = 4 * 1024 * 1024
#: An extent's header in a batch: offset and length, 8-byte big-endian each.
EXTENT = struct.Struct(">QQ")


def is_partial(client: CephClient, pool: str, volume: str) -> str | None:
    """The snapshot a volume is being received for, or None if it is complete (or absent)."""
    return volumes.get_metadata(client, pool, volume, PARTIAL) or None


def owner(client: CephClient, pool: str, volume: str) -> str | None:
    """The VM a volume was received for (None: it was not received, or is absent)."""
    return volumes.get_metadata(client, pool, volume, OWNER) or None


def take_ownership(client: CephClient, vm: str, pool: str, volume: str) -> None:
    """Let sends of VM ``vm`` write this (complete) volume: a VM handed over to another
    cluster and kept here as its mirror receives that cluster's snapshots from then on."""
    volumes.set_metadata(client, pool, volume, OWNER, vm)


def _require_owner(image, pool: str, volume: str, vm: str) -> dict[str, str]:
    metadata = dict(image.metadata_list())
    if metadata.get(OWNER) != vm:
        raise StorageError(f"volume {pool}/{volume} was not received for VM {vm}; it is not written")
    return metadata


def receive_image(
    client: CephClient,
    vm: str,
    pool: str,
    volume: str,
    snapshot: str,
    size: int,
    stream: BinaryIO,
    checksum: str | None = None,
) -> str:
    """Create ``pool/volume`` of ``size`` bytes from ``stream`` (exactly ``size`` bytes);
    returns the CRC-32 (hex) of what arrived, for the sender to compare (see
    :mod:`pvc.storage.digest`). A volume left partial
    by an earlier attempt for the same ``vm`` is replaced; any other existing one is
    StorageExists. A short or
    long stream, or a CRC-32 other than ``checksum``, is StorageError and removes the volume."""
    if volumes.exists(client, pool, volume):
        if not is_partial(client, pool, volume) or owner(client, pool, volume) != vm:
            raise StorageExists(f"volume {pool}/{volume} exists: send the changes since a common snapshot")
        volumes.remove(client, pool, volume, with_snapshots=True)
    volumes.create(client, pool, volume, size)
    try:
        volumes.set_metadata(client, pool, volume, OWNER, vm)
        volumes.set_metadata(client, pool, volume, PARTIAL, snapshot)
        with StreamCrc32() as digest:

            def hashed() -> Iterator[bytes]:
                while block := stream.read(CHUNK):
                    digest.update(block)
                    yield block

            try:  # several writes in flight (librbd), as an upload does
                upload.write_raw(client, pool, volume, hashed(), size)
            except ValueError as error:
                raise StorageError(
                    f"what arrived for {pool}/{volume} is not the {size} bytes announced: {error}"
                ) from None
            received = digest.hexdigest()
        if checksum and received != checksum:
            raise StorageError(f"the image received for {pool}/{volume} does not match its checksum")
    except BaseException:
        with contextlib.suppress(StorageError):
            volumes.remove(client, pool, volume, with_snapshots=True)
        raise
    return received


def receive_extents(
    client: CephClient,
    vm: str,
    pool: str,
    volume: str,
    snapshot: str,
    source_snapshot: str,
    parts: Iterable[bytes],
    checksum: str | None = None,
    send: str = "",
    index: int | None = None,
) -> int:
    """Apply a batch of extents (each ``EXTENT`` header + data) to ``pool/volume`` on top of
    ``source_snapshot``; returns the data bytes written. The whole batch is checked (framing,
    bounds, ``checksum`` of the concatenated parts) before any of it is written.

    The first batch of a send (``send`` names it; senders that do not name theirs are told
    apart by the snapshot alone) rolls the volume back to ``source_snapshot`` first, so what
    a cut-off send of the same snapshot wrote never stays. A sender that numbers its batches
    (``index``, 0 for the first) has a later one refused (StorageBusy) once another send has
    begun on the volume since its first: two sends at once never mix, the later one wins."""
    batch = list(parts)
    digest = hashlib.sha256()
    extents = []
    with open_image(client, pool, volume, read_only=False) as image:
        metadata = _require_owner(image, pool, volume, vm)
        if not image.snap_exists(source_snapshot):
            raise StorageNotFound(f"volume {pool}/{volume} has no snapshot {source_snapshot} to build on")
        if image.snap_exists(snapshot):
            raise StorageExists(f"snapshot {pool}/{volume}@{snapshot} exists already")
        size = image.size()
        for part in batch:
            digest.update(part)
            if not part:  # an empty batch: only says that this snapshot's changes begin
                continue
            if len(part) < EXTENT.size:
                raise StorageError("an extent is shorter than its header")
            offset, length = EXTENT.unpack_from(part)
            if length != len(part) - EXTENT.size or offset + length > size:
                raise StorageError(f"an extent at {offset} (+{length}) does not fit volume {pool}/{volume}")
            extents.append((offset, memoryview(part)[EXTENT.size :]))
        if checksum and digest.hexdigest() != checksum:
            raise StorageError(f"the batch for {pool}/{volume} does not match its checksum")
        marker = f"{snapshot} {send}".strip()
        current = metadata.get(PARTIAL, "")
        if index is not None and index > 0 and current != marker:
            raise StorageBusy(
                f"another send to {pool}/{volume} began after this one's first batch; this send stops here"
            )
        if current != marker or index == 0:  # the first batch of this send
            image.rollback_to_snap(source_snapshot)
            image.metadata_set(PARTIAL, marker)
        for offset, data in extents:
            image.write(bytes(data), offset)
    return sum(len(data) for _, data in extents)


def seal(client: CephClient, vm: str, pool: str, volume: str, snapshot: str) -> None:
    """Take ``snapshot`` of a volume received for ``vm`` and mark it complete: only a volume
    whose whole image or first batch for this very snapshot arrived (StorageError otherwise:
    a send without changes sends an empty batch first, which rolls the volume back)."""
    with open_image(client, pool, volume, read_only=False) as image:
        metadata = _require_owner(image, pool, volume, vm)
        if image.snap_exists(snapshot):
            raise StorageExists(f"snapshot {pool}/{volume}@{snapshot} exists already")
        if metadata.get(PARTIAL, "").split(" ")[0] != snapshot:
            raise StorageError(f"nothing of snapshot {snapshot} was received for {pool}/{volume}")
        image.create_snap(snapshot)
        image.metadata_remove(PARTIAL)


def settle(client: CephClient, pool: str, volume: str, snapshot: str) -> bool:
    """Before a mirror is used as a VM: roll its received volume back to ``snapshot`` (the
    mirror's last complete one) when a later send changed it (a cut-off send left it partial,
    or sealed a snapshot whose VM configuration never arrived); True if it was rolled back."""
    with open_image(client, pool, volume, read_only=False) as image:
        metadata = dict(image.metadata_list())
        if not image.snap_exists(snapshot):
            raise StorageNotFound(f"volume {pool}/{volume} has no snapshot {snapshot}")
        newest = max(image.list_snaps(), key=lambda snap: snap["id"])["name"]
        if not metadata.get(PARTIAL) and newest == snapshot:
            return False
        image.rollback_to_snap(snapshot)
        if metadata.get(PARTIAL):
            image.metadata_remove(PARTIAL)
    return True
