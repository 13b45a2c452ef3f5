"""What a VM definition may ask of a node: the allowlist's settings, and host-path checks.

Domain XML comes from API clients and is run by the node daemon as root, so a VM may use
only what the cluster provides: RBD disks on the cluster's Ceph, bridges of the cluster's
networks, ``pty`` consoles, the node's own QEMU and firmware. A few things reach the host
and are for ``admin`` keys only, and then only where the node's configuration allows them:
file disks under the image directory and host devices listed as assignable.

:class:`XmlPolicy` holds those settings; :mod:`pvc.domain_xml.allowlist` applies them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from pvc.domain_xml.bridges import vni_of_bridge

#: Where the firmware images that VMs may boot from are installed by Debian's packages.
DEFAULT_FIRMWARE_DIRS = (
    "/usr/share/OVMF",
    "/usr/share/AAVMF",
    "/usr/share/qemu",
    "/usr/share/seabios",
    "/usr/lib/ipxe/qemu",
)
#: The QEMU binaries a domain may name as its ``<emulator>`` (the node's own).
EMULATOR = re.compile(r"/usr/bin/qemu-system-[a-z0-9_]+|/usr/bin/kvm|/usr/libexec/qemu-kvm")
#: Where libvirt keeps a VM's UEFI variables when the XML names no file of its own.
NVRAM_DIR = "/var/lib/libvirt/qemu/nvram"
#: A PCI address as ``lspci -D`` and libvirt spell it, and a USB device by vendor:product.
PCI_ADDRESS = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
USB_DEVICE = re.compile(r"[0-9a-f]{4}:[0-9a-f]{4}")


@dataclass(frozen=True)
class XmlPolicy:
    """The settings the allowlist checks a domain against.

    ``admin`` is the caller's privilege (the node daemon checks as admin: the role was
    checked when the XML was accepted). ``image_dirs`` hold direct-boot kernels and
    (admin-only) file disks; ``firmware_dirs`` the loaders; ``bridges`` the host bridges VMs
    may join (None: the bridges of PVC networks, ``vmbr<VNI>``); ``sriov_vfs`` the
    virtual functions the cluster tracks; ``assignable_pci``/``assignable_usb`` the host
    devices an admin may pass through; ``ceph_monitors`` the monitor addresses an RBD
    disk may name (empty: none may be named) and ``ceph_users`` its cephx users.
    ``kept`` are admin-only devices already in the VM's stored XML (canonical text),
    which a non-admin change may keep unchanged.
    """

    admin: bool = False
    image_dirs: tuple[str, ...] = ()
    firmware_dirs: tuple[str, ...] = DEFAULT_FIRMWARE_DIRS
    bridges: frozenset[str] | None = None
    sriov_vfs: frozenset[str] = frozenset()
    assignable_pci: frozenset[str] = frozenset()
    assignable_usb: frozenset[str] = frozenset()
    ceph_monitors: frozenset[str] = frozenset()
    ceph_users: frozenset[str] = frozenset()
    kept: frozenset[str] = field(default=frozenset(), compare=False)

    def as_admin(self) -> XmlPolicy:
        """The same settings with admin privilege (what the node daemon checks with)."""
        return replace(self, admin=True, kept=frozenset())

    def as_role(self, admin: bool, kept: Iterable[str] = ()) -> XmlPolicy:
        """The same settings for a caller with (or without) admin privilege."""
        return replace(self, admin=admin, kept=frozenset(kept))

    def bridge_allowed(self, bridge: str) -> bool:
        """Whether VMs may join host bridge ``bridge``."""
        if self.bridges is not None:
            return bridge in self.bridges
        return bridge.startswith("vmbr") and vni_of_bridge(bridge) is not None


def split_assignable(devices: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Config entries split into PCI addresses and USB ``vendor:product`` ids (lower case).

    ValueError names an entry that is neither.
    """
    pci, usb = set(), set()
    for entry in devices:
        value = entry.strip().lower()
        if PCI_ADDRESS.fullmatch(value):
            pci.add(value)
        elif USB_DEVICE.fullmatch(value):
            usb.add(value)
        else:
            raise ValueError(f"'{entry}' is neither a PCI address (0000:01:00.0) nor a USB id (abcd:1234)")
    return frozenset(pci), frozenset(usb)


def inside(path: str, directories: Iterable[str]) -> bool:
    """Whether absolute ``path`` names a file inside one of ``directories`` (lexically).

    ``..`` components and relative paths are never inside; symbolic links are the node's
    business (see :mod:`pvc.node.vm_runtime`).
    """
    if not path.startswith("/") or "\x00" in path:
        return False
    if any(part == ".." for part in path.split("/")):
        return False
    normal = posixpath.normpath(path)
    for directory in directories:
        base = posixpath.normpath(str(directory))
        if base != "/" and normal.startswith(base + "/"):
            return True
    return False
