"""OVF descriptors and OVA archives made here: the lab's appliance, and the tests' (good and
malformed ones)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

ENVELOPES = {1: "http://schemas.dmtf.org/ovf/envelope/1", 2: "http://schemas.dmtf.org/ovf/envelope/2"}
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
QCOW2 = "http://www.gnome.org/~markmc/qcow-image-format.html"
VMDK = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"


def ovf_text(
    disks: list[tuple[str, int, str, int | None]],
    *,
    version: int = 1,
    cpus: int = 2,
    memory_mib: int = 512,
    name: str = "appliance",
) -> bytes:
    """An OVF descriptor with ``disks`` as (file name, capacity in bytes, format URL, declared size)."""
    ns = ENVELOPES[version]
    files = "".join(
        f'<File ovf:id="file{i}" ovf:href="{href}"'
        + (f' ovf:size="{size}"' if size is not None else "")
        + "/>"
        for i, (href, _, _, size) in enumerate(disks)
    )
    disk_items = "".join(
        f'<Disk ovf:diskId="vmdisk{i}" ovf:fileRef="file{i}" ovf:capacity="{capacity}" ovf:format="{url}"/>'
        for i, (_, capacity, url, _) in enumerate(disks)
    )
    return (
        f'<?xml version="1.0"?><Envelope xmlns="{ns}" xmlns:ovf="{ns}" xmlns:rasd="{RASD}">'
        f"<References>{files}</References>"
        f"<DiskSection><Info>disks</Info>{disk_items}</DiskSection>"
        f'<VirtualSystem ovf:id="{name}"><Info>vm</Info><VirtualHardwareSection><Info>hw</Info>'
        "<Item><rasd:ResourceType>3</rasd:ResourceType>"
        f"<rasd:VirtualQuantity>{cpus}</rasd:VirtualQuantity></Item>"
        "<Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>"
        "<rasd:ResourceType>4</rasd:ResourceType>"
        f"<rasd:VirtualQuantity>{memory_mib}</rasd:VirtualQuantity></Item>"
        f"</VirtualHardwareSection></VirtualSystem></Envelope>"
    ).encode()


def ova_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A tar archive of ``members`` (name, content), in that order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def qcow2_disk(directory: Path, label: str, size: int = 64 * 1024**2) -> bytes:
    """A qcow2 disk of ``size`` bytes whose first line is ``label`` (what a lab guest prints)."""
    raw, qcow2 = directory / "appliance.raw", directory / "appliance.qcow2"
    with raw.open("wb") as image:
        image.write(f"{label}\n".encode())
        image.truncate(size)
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2)],
        check=True,
        capture_output=True,
    )
    raw.unlink()
    data = qcow2.read_bytes()
    qcow2.unlink()
    return data


def appliance_ova(directory: Path, name: str, label: str, *, cpus: int = 1, memory_mib: int = 96) -> Path:
    """An OVA file ``<name>.ova`` in ``directory``: an OVF and one 64 MiB qcow2 disk labelled ``label``."""
    disk = qcow2_disk(directory, label)
    ovf = ovf_text(
        [("disk.qcow2", 64 * 1024**2, QCOW2, len(disk))], cpus=cpus, memory_mib=memory_mib, name=name
    )
    path = directory / f"{name}.ova"
    path.write_bytes(ova_bytes([(f"{name}.ovf", ovf), ("disk.qcow2", disk)]))
    return path
