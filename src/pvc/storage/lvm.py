"""LVM for OSD DB devices: the OSD DB volume group and one logical volume per external OSD DB."""

from __future__ import annotations

import uuid

from pvc.storage import tools

#: The LVM volume group holding OSD DB logical volumes (``create-db-vg``).
DB_VG_NAME = "osd-db"


def create_physical_volume(device: str) -> None:
    """Make ``device`` an LVM physical volume (``pvcreate``)."""
    tools.run(["pvcreate", "--yes", device])


def create_db_volume_group(device: str) -> None:
    """Create the OSD DB volume group (:data:`DB_VG_NAME`) on the physical volume ``device``."""
    tools.run(["vgcreate", DB_VG_NAME, device])


def create_db_volume(size: int) -> str:
    """A new logical volume of ``size`` bytes in the OSD DB volume group; its ``<vg>/<lv>`` name."""
    name = f"osd-db-{uuid.uuid4().hex[:12]}"
    tools.run(["lvcreate", "--yes", "-L", f"{size}b", "-n", name, DB_VG_NAME])
    return f"{DB_VG_NAME}/{name}"


def remove_volume(volume: str) -> None:
    """Remove the logical volume ``volume`` (``<vg>/<lv>``)."""
    tools.run(["lvremove", "--yes", volume])
