"""Reading an OVF descriptor (OVF 1.x and 2.x): the files an OVA carries, its disks, and the
virtual machine's CPUs and memory.

The descriptor comes from whoever uploads the OVA, so it is parsed without entities, DTDs or
network access, every file it names must be a plain file name, and sizes are checked
against sane bounds; anything else is an :class:`OvfError` (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from pvc.cluster.errors import ClusterError

#: The envelope namespaces of OVF 1.x and 2.x.
NAMESPACES = ("http://schemas.dmtf.org/ovf/envelope/1", "http://schemas.dmtf.org/ovf/envelope/2")
RASD = (
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData.xsd",
)
#: CIM resource types of the hardware items read.
CPU, MEMORY, DISK_DRIVE = "3", "4", "17"
MAX_DESCRIPTOR = 1024 * 1024
MAX_DISKS = 16
MAX_DISK_BYTES = 64 * 1024**4
#: A file an OVA carries: a plain name, no directories.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,254}")
_UNITS = re.compile(r"^byte(?:\s*\*\s*2\s*\^\s*(\d{1,2}))?$")
#: The largest memory an OVF may give (MiB), as a system template allows.
MAX_MEMORY_MIB = 16 * 1024 * 1024


class OvfError(ClusterError):
    """The OVF descriptor (or the OVA around it) is malformed or does not add up."""


@dataclass(frozen=True)
class OvfDisk:
    """A disk of the virtual machine: its file in the OVA, capacity and image format."""

    disk_id: str  # the OVF's own id
    href: str
    capacity: int  # bytes
    image_format: str  # a qemu-img format: vmdk, qcow2 or raw
    file_size: int | None  # what the References section declares, if anything


@dataclass(frozen=True)
class Ovf:
    name: str
    vcpus: int
    memory_mib: int
    disks: list[OvfDisk]

    def disk_for(self, href: str) -> OvfDisk | None:
        return next((disk for disk in self.disks if disk.href == href), None)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _attribute(element: etree._Element, name: str) -> str | None:
    """An OVF attribute (``ovf:name``) in whichever envelope namespace the document uses."""
    for namespace in NAMESPACES:
        value = element.get(f"{{{namespace}}}{name}")
        if value is not None:
            return value
    return element.get(name)


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element.iter() if isinstance(child.tag, str) and _local(child) == name]


def _bytes(amount: str | None, units: str | None, what: str) -> int:
    """``amount`` in ``units`` (``byte``, ``byte * 2^20`` ...) as bytes."""
    if not re.fullmatch(r"\d{1,20}", amount or ""):
        raise OvfError(f"{what} '{(amount or '')[:40]}' is not a whole number")
    value = int(amount or "")
    match = _UNITS.match((units or "byte").strip())
    if match is None:
        raise OvfError(f"{what} is in units '{(units or '')[:40]}', not bytes (byte * 2^N)")
    exponent = int(match.group(1) or 0)
    if exponent > 60:
        raise OvfError(f"{what} is in units of 2^{exponent} bytes, more than PVC reads")
    total = value * 2**exponent
    if not 0 < total <= MAX_DISK_BYTES:
        raise OvfError(f"{what} of {total} bytes is out of range")
    return total


def _format(url: str | None, href: str) -> str:
    text = (url or "").lower() + " " + href.lower()
    if "vmdk" in text:
        return "vmdk"
    if "qcow" in text:
        return "qcow2"
    if text.rstrip().endswith((".img", ".raw")) or "raw" in text:
        return "raw"
    raise OvfError(f"disk file '{href}' is in a format PVC cannot import ({(url or 'none')[:80]})")


def _hardware_figure(items: list[etree._Element], kind: str) -> tuple[int, str] | None:
    """(VirtualQuantity, AllocationUnits) of the first hardware item of resource type ``kind``."""
    for item in items:
        fields = {_local(child): (child.text or "").strip() for child in item if isinstance(child.tag, str)}
        if fields.get("ResourceType") == kind:
            quantity = fields.get("VirtualQuantity", "")
            if not re.fullmatch(r"\d{1,12}", quantity):
                raise OvfError(f"a hardware item of type {kind} has no whole VirtualQuantity")
            return int(quantity), fields.get("AllocationUnits", "")
    return None


def _memory_mib(quantity: int, units: str) -> int:
    factors = {"": 2**20, "MB": 2**20, "MIB": 2**20, "GB": 2**30, "GIB": 2**30, "KB": 2**10}
    key = units.upper().replace("BYTE", "").replace(" ", "")
    match = re.fullmatch(r"\*2\^(\d{1,2})", key)
    factor = 2 ** int(match.group(1)) if match and int(match.group(1)) <= 60 else factors.get(key)
    if factor is None:
        raise OvfError(f"memory is in units '{units[:40]}' PVC does not read")
    memory = quantity * factor // 2**20
    if not 32 <= memory <= MAX_MEMORY_MIB:
        raise OvfError(f"the OVF gives {memory} MiB of memory: not between 32 and {MAX_MEMORY_MIB}")
    return memory


def parse(text: bytes) -> Ovf:
    """The parts of OVF descriptor ``text`` PVC uses; OvfError when it is not a usable OVF."""
    if len(text) > MAX_DESCRIPTOR:
        raise OvfError(f"the OVF descriptor is larger than {MAX_DESCRIPTOR} bytes")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError as error:
        raise OvfError(f"the OVF descriptor is not well-formed XML: {error}") from None
    if etree.QName(root).namespace not in NAMESPACES or _local(root) != "Envelope":
        raise OvfError("the descriptor is not an OVF 1.x or 2.x Envelope")
    files = {}
    for element in _children(root, "File"):
        file_id, href = _attribute(element, "id"), _attribute(element, "href") or ""
        if not FILE_NAME.fullmatch(href) or href.endswith((".ovf", ".mf")):
            raise OvfError(f"the OVF names a file '{href[:80]}' that is not a plain disk file name")
        size = _attribute(element, "size")
        files[file_id] = (href, _bytes(size, None, f"file {href}'s size") if size else None)
    disks = []
    for element in _children(root, "Disk"):
        file_ref = _attribute(element, "fileRef")
        if file_ref not in files:
            raise OvfError(f"disk {_attribute(element, 'diskId')} names no file of the OVA")
        href, size = files[file_ref]
        capacity = _bytes(
            _attribute(element, "capacity"),
            _attribute(element, "capacityAllocationUnits"),
            f"disk {href}'s capacity",
        )
        image_format = _format(_attribute(element, "format"), href)
        disks.append(OvfDisk(_attribute(element, "diskId") or href, href, capacity, image_format, size))
    if not disks:
        raise OvfError("the OVF describes no disk")
    if len(disks) > MAX_DISKS or len({d.href for d in disks}) != len(disks):
        raise OvfError(f"the OVF describes more than {MAX_DISKS} disks, or one file twice")
    items = _children(root, "Item") + _children(root, "StorageItem")
    cpus = _hardware_figure(items, CPU)
    memory = _hardware_figure(items, MEMORY)
    if cpus is None or memory is None or not 1 <= cpus[0] <= 512:
        raise OvfError("the OVF's virtual hardware gives no CPU count (1-512) or no memory")
    systems = _children(root, "VirtualSystem")
    name = (_attribute(systems[0], "id") or "") if systems else ""
    return Ovf(name=name, vcpus=cpus[0], memory_mib=_memory_mib(*memory), disks=disks)
