"""Block devices on this host, for OSDs and the OSD DB volume group: is it one, how big is it."""

from __future__ import annotations

import os
import stat

from pvc.storage.errors import StorageDeviceError


def require_block_device(device: str) -> None:
    """Return if ``device`` is a block device; StorageDeviceError if it is missing or something else."""
    try:
        mode = os.stat(device).st_mode
    except OSError as error:
        raise StorageDeviceError(f"device {device}: {error.strerror}") from None
    if not stat.S_ISBLK(mode):
        raise StorageDeviceError(f"{device} is not a block device")


def size_bytes(device: str) -> int:
    """The size of ``device`` (a block device or file) in bytes; StorageDeviceError if unreadable."""
    try:
        with open(device, "rb") as handle:
            return handle.seek(0, os.SEEK_END)
    except OSError as error:
        raise StorageDeviceError(f"device {device}: {error.strerror}") from None
