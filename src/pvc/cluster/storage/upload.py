"""Writing an uploaded disk image into an existing RBD volume.

Raw images of a given size stream straight into the volume through librbd; other formats (qcow2, vmdk
...) are spooled to a file in the node's state directory and converted into the volume
with ``qemu-img`` (see :mod:`pvc.storage.upload`). The volume must exist and be large
enough for the image's virtual size; nothing is written otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.storage.actions import StorageOps
from pvc.storage import upload as image_upload

#: Image formats an upload may be in (raw is streamed, the others converted by qemu-img).
IMAGE_FORMATS = image_upload.FORMATS
#: Bytes read from the request per chunk.
CHUNK = 4 * 1024 * 1024
#: Seconds a conversion may take.
CONVERT_TIMEOUT = 3600.0


def upload(
    ops: StorageOps,
    state_dir: Path,
    pool: str,
    volume: str,
    image_format: str,
    stream: BinaryIO,
    file_size: int | None = None,
) -> str:
    """Write the image read from ``stream`` into ``pool/volume``; returns a message."""
    ops.volume_size(pool, volume)  # 404 for an unknown volume (the adapter checks the size)
    chunks = iter(lambda: stream.read(CHUNK), b"")
    with mapped_errors(ops.access):
        if image_format == "raw" and file_size is not None:
            image_upload.write_raw(ops.access.client(), pool, volume, chunks, file_size)
        else:
            spool_dir = Path(state_dir) / "uploads"
            spool_dir.mkdir(parents=True, exist_ok=True)
            spooled = image_upload.spool(chunks, spool_dir)
            try:
                image_upload.import_image(
                    ops.access.client(), pool, volume, spooled, image_format, timeout=CONVERT_TIMEOUT
                )
            finally:
                spooled.unlink(missing_ok=True)
    ops.refresh_volume(pool, volume)
    return f"Wrote the {image_format} image into RBD volume '{pool}/{volume}'"
