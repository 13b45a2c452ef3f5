"""Writing an uploaded disk image into an existing RBD volume.

Raw images of a given size stream straight into the volume through librbd; other formats (qcow2, vmdk
...) are spooled to a file in the node's state directory and converted into the volume
with ``qemu-img`` (see :mod:`pvc.storage.upload`). The volume must exist and be large
enough for the image's virtual size; nothing is written otherwise. An upload may not be
larger than :func:`size_limit` allows for its volume: the spool stops there.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.storage.actions import StorageOps
from pvc.storage import upload as image_upload

#: Image formats an upload may be in (raw is streamed, the others converted by qemu-img).
IMAGE_FORMATS = image_upload.FORMATS
#: Seconds a conversion may take.
CONVERT_TIMEOUT = 3600.0
#: An image in a format with metadata (qcow2, vmdk ...) may exceed its volume by this
#: fraction of the volume's size plus :data:`FORMAT_OVERHEAD` bytes (its tables and headers).
FORMAT_OVERHEAD_FRACTION = 1 / 64
FORMAT_OVERHEAD = 16 * 1024 * 1024


def size_limit(volume_size: int, image_format: str) -> int:
    """The most bytes an image in ``image_format`` for a volume of ``volume_size`` bytes may have:
    a raw image is at most the volume; other formats carry metadata beside the data."""
    if image_format == "raw":
        return volume_size
    return volume_size + int(volume_size * FORMAT_OVERHEAD_FRACTION) + FORMAT_OVERHEAD


def upload(
    ops: StorageOps,
    state_dir: Path,
    pool: str,
    volume: str,
    image_format: str,
    chunks: Iterable[bytes],
    file_size: int | None = None,
    limit: int | None = None,
) -> str:
    """Write the image arriving as ``chunks`` into ``pool/volume``; returns a message.

    A raw image of known ``file_size`` goes straight into the volume; any other is spooled
    (at most ``limit`` bytes, ValueError beyond) and converted. The caller has checked
    the volume exists (:meth:`StorageOps.volume_size`).
    """
    with mapped_errors(ops.access):
        if image_format == "raw" and file_size is not None:
            image_upload.write_raw(ops.access.client(), pool, volume, chunks, file_size)
        else:
            spool_dir = Path(state_dir) / "uploads"
            spool_dir.mkdir(parents=True, exist_ok=True)
            spooled = image_upload.spool(chunks, spool_dir, limit=limit)
            try:
                image_upload.import_image(
                    ops.access.client(), pool, volume, spooled, image_format, timeout=CONVERT_TIMEOUT
                )
            finally:
                spooled.unlink(missing_ok=True)
    ops.refresh_volume(pool, volume)
    return f"Wrote the {image_format} image into RBD volume '{pool}/{volume}'"
