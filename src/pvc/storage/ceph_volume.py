"""OSDs on block devices of this host with ``ceph-volume`` (BlueStore on LVM).

The single OSD form takes an id to reuse (replacing an OSD's device) and an external DB
device; the batch form splits one device into several OSDs. Failures are
StorageToolErrors carrying the tool's own reason; a device that is not a block device
is a StorageDeviceError.
"""

from __future__ import annotations

import contextlib

from pvc.storage import devices, lvm, osds, tools
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageToolError


def create(device: str, *, osd_id: int | None = None, block_db: str | None = None) -> None:
    """Create one OSD on ``device`` (``lvm create``), reusing ``osd_id`` and with DB volume ``block_db``."""
    argv = ["ceph-volume", "lvm", "create", "--bluestore", "--data", device]
    if osd_id is not None:
        argv += ["--osd-id", str(osd_id)]
    if block_db:
        argv += ["--block.db", block_db]
    tools.run(argv)


def batch(device: str, osds_per_device: int) -> None:
    """Create ``osds_per_device`` OSDs on ``device`` (``lvm batch``)."""
    argv = ["ceph-volume", "lvm", "batch", "--yes", "--bluestore"]
    tools.run([*argv, "--osds-per-device", str(osds_per_device), device])


def activate_all() -> None:
    """Bring up every OSD ceph-volume finds on this host's devices (``lvm activate --all``)."""
    tools.run(["ceph-volume", "lvm", "activate", "--all"])


def create_osds(
    client: CephClient, device: str, count: int = 1, osd_id: int | None = None, db_size: int | None = None
) -> list[tuple[int, str]]:
    """Create ``count`` OSDs on the block device ``device``; ``(id, DB volume)`` of each new one.

    A single OSD may reuse ``osd_id`` and get an external DB: a logical volume of
    ``db_size`` bytes in the OSD DB volume group, removed again if the OSD cannot be
    created. The DB volume is ``""`` for OSDs without one.
    """
    devices.require_block_device(device)
    before = set(osds.ids(client))
    db = ""
    if count > 1:
        batch(device, count)
    else:
        if db_size is not None:
            db = lvm.create_db_volume(db_size)
        try:
            create(device, osd_id=osd_id, block_db=db)
        except StorageToolError:
            if db:
                with contextlib.suppress(StorageToolError):
                    lvm.remove_volume(db)
            raise
    new = [osd_id] if osd_id is not None else sorted(set(osds.ids(client)) - before)
    if not new:
        raise StorageToolError(f"ceph-volume finished but no new OSD appeared for {device}")
    return [(new_id, db) for new_id in new]
