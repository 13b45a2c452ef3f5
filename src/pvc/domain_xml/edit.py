"""Changes to a VM's domain XML: vCPUs, memory, network interfaces and disks.

The CLI fetches a VM's XML from the API, reads it with :func:`pvc.domain_xml.parse.load`,
changes it here and sends the whole document back. Every failure is a
:class:`~pvc.domain_xml.errors.DomainXMLError` with a message fit for the user. PVC networks
are bridges named by :func:`pvc.domain_xml.bridges.bridge_name` from their VNI.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from lxml import etree

from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.units import unit_bytes

DEFAULT_NIC_MODEL = "virtio"
#: Locally administered prefix of the MAC addresses the CLI makes up (QEMU/KVM's own).
MAC_PREFIX = "52:54:00"
MAC_ADDRESS = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
#: Target device name prefix per disk bus (``sda``, ``vda``, ``hda``...).
BUS_PREFIXES = {"scsi": "sd", "sata": "sd", "usb": "sd", "virtio": "vd", "ide": "hd"}
DISK_TYPES = ("rbd", "file")
#: Units accepted on the command line for memory sizes, in MiB (binary, whatever the spelling).
MEMORY_UNITS = {
    "": 1,
    "m": 1,
    "mb": 1,
    "mib": 1,
    "g": 1024,
    "gb": 1024,
    "gib": 1024,
    "t": 1024**2,
    "tb": 1024**2,
    "tib": 1024**2,
}
PCI_ADDRESS = re.compile(r"([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])")
TARGET_DEVICE = re.compile(r"[a-z]{2,3}[a-z]+")
_SIZE = re.compile(r"(\d+)\s*([a-z]*)")


Element = etree._Element


def serialize(element: Element) -> str:
    """The XML text of a document or of one device (without its trailing whitespace)."""
    return etree.tostring(element, encoding="unicode", with_tail=False)


def domain_name(root: Element) -> str:
    """The ``<name>`` of the domain (empty when missing)."""
    return (root.findtext("name") or "").strip()


# vCPUs and memory.


@dataclass(frozen=True)
class Topology:
    """A CPU topology: sockets, cores per socket and threads per core."""

    sockets: int
    cores: int
    threads: int

    @property
    def vcpus(self) -> int:
        """The number of vCPUs the topology gives."""
        return self.sockets * self.cores * self.threads

    def __str__(self) -> str:
        return f"{self.sockets},{self.cores},{self.threads}"


def parse_topology(text: str) -> Topology:
    """``SOCKETS,CORES,THREADS`` (``/`` also separates) as a :class:`Topology` of positive numbers."""
    parts = [part.strip() for part in re.split(r"[,/]", text)]
    if len(parts) != 3 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise DomainXMLError(f"a topology is SOCKETS,CORES,THREADS (positive numbers), not '{text}'")
    return Topology(*(int(part) for part in parts))


def parse_count(text: str, what: str) -> int:
    """A positive whole number given on the command line."""
    value = text.strip()
    if not value.isdigit() or int(value) < 1:
        raise DomainXMLError(f"{what} must be a positive whole number, not '{text}'")
    return int(value)


def parse_memory(text: str) -> int:
    """A memory size in MiB from ``4096``, ``4096M``, ``4G``, ``4GiB`` or ``1T`` (plain numbers are MiB)."""
    match = _SIZE.fullmatch(text.strip().lower())
    if not match or match.group(2) not in MEMORY_UNITS or int(match.group(1)) < 1:
        raise DomainXMLError(f"memory must be a positive size in MiB (or with a unit M, G, T), not '{text}'")
    return int(match.group(1)) * MEMORY_UNITS[match.group(2)]


def read_vcpus(root: Element) -> tuple[int | None, Topology | None]:
    """The ``<vcpu>`` count and the ``<cpu><topology>`` (None for what the XML does not say)."""
    text = (root.findtext("vcpu") or "").strip()
    count = int(text) if text.isdigit() else None
    found = root.find("cpu/topology")
    topology = None
    if found is not None:
        try:
            topology = Topology(*(int(found.get(key, "")) for key in ("sockets", "cores", "threads")))
        except ValueError:
            topology = None
    return count, topology


def default_topology(vcpus: int) -> Topology:
    """PVC's topology for ``vcpus`` vCPUs when none is given: one socket of ``vcpus`` single-thread
    cores (what a domain without ``<cpu><topology>`` gets from QEMU too)."""
    return Topology(1, vcpus, 1)


def effective_vcpus(root: Element) -> tuple[int | None, Topology | None]:
    """:func:`read_vcpus`, with :func:`default_topology` for a domain that states no topology."""
    count, topology = read_vcpus(root)
    if topology is None and count is not None and count > 0:
        topology = default_topology(count)
    return count, topology


def set_vcpus(root: Element, vcpus: int, topology: Topology | None = None) -> None:
    """Set the vCPU count and the ``<cpu><topology>``: ``topology`` if given, else the current one
    if it still fits, else :func:`default_topology` (the elements are added when missing)."""
    if vcpus < 1:
        raise DomainXMLError("a VM needs at least one vCPU")
    if topology is not None and topology.vcpus != vcpus:
        raise DomainXMLError(f"topology {topology} gives {topology.vcpus} vCPUs, not {vcpus}")
    if topology is None:
        _, current = read_vcpus(root)
        topology = current if current is not None and current.vcpus == vcpus else default_topology(vcpus)
    vcpu = root.find("vcpu")
    if vcpu is None:
        vcpu = etree.SubElement(root, "vcpu")
    vcpu.text = str(vcpus)
    vcpu.attrib.pop("current", None)
    cpu = root.find("cpu")
    if cpu is None:
        cpu = etree.SubElement(root, "cpu")
    element = cpu.find("topology")
    if element is None:
        element = etree.SubElement(cpu, "topology")
    element.set("sockets", str(topology.sockets))
    element.set("cores", str(topology.cores))
    element.set("threads", str(topology.threads))


def read_memory(root: Element) -> int | None:
    """The ``<memory>`` size in MiB (None when missing or unreadable)."""
    element = root.find("memory")
    if element is None:
        return None
    match = _SIZE.fullmatch((element.text or "").strip())
    unit = unit_bytes(element.get("unit"))
    if not match or unit is None:
        return None
    return int(match.group(1)) * unit // 2**20


def set_memory(root: Element, mib: int) -> None:
    """Set ``<memory>`` (and ``<currentMemory>`` when present) to ``mib`` MiB."""
    if mib < 1:
        raise DomainXMLError("a VM needs some memory")
    maximum = root.find("maxMemory")
    if maximum is not None:
        limit = unit_bytes(maximum.get("unit"))
        text = (maximum.text or "").strip()
        if limit and text.isdigit() and mib * 2**20 > int(text) * limit:
            raise DomainXMLError(f"{mib} MiB is more than the VM's <maxMemory>")
    for tag in ("memory", "currentMemory"):
        element = root.find(tag)
        if element is None and tag == "memory":
            element = etree.SubElement(root, "memory")
        if element is not None:
            element.text = str(mib)
            element.set("unit", "MiB")


# Devices.


def _devices(root: Element) -> Element:
    devices = root.find("devices")
    if devices is None:
        devices = etree.SubElement(root, "devices")
    return devices


def _insert_device(root: Element, element: Element) -> None:
    """Add a device after the last one of its kind (else at the end), keeping the indentation."""
    devices = _devices(root)
    same = devices.findall(element.tag)
    if same:
        element.tail = same[-1].tail
        same[-1].addnext(element)
        return
    if len(devices):
        last = devices[-1]
        element.tail = last.tail
        last.tail = devices.text
    devices.append(element)


def _remove(element: Element) -> None:
    """Remove an element, keeping the whitespace that followed the one before it."""
    parent = element.getparent()
    if parent is None:
        return
    previous = element.getprevious()
    if previous is not None:
        previous.tail = element.tail
    elif len(parent) == 1:
        parent.text = element.tail
    parent.remove(element)
    element.tail = None


# Network interfaces.


def parse_vni(text: str) -> str:
    """A network VNI given on the command line."""
    value = text.strip()
    if not value.isdigit():
        raise DomainXMLError(f"a network is given by its VNI (a whole number), not '{text}'")
    return str(int(value))


def normalize_mac(text: str) -> str:
    """A MAC address as lower-case ``xx:xx:xx:xx:xx:xx`` (``-`` separators are accepted)."""
    value = text.strip().lower().replace("-", ":")
    if not MAC_ADDRESS.fullmatch(value):
        raise DomainXMLError(f"'{text}' is not a MAC address (xx:xx:xx:xx:xx:xx)")
    return value


def random_mac(rng: random.Random | None = None) -> str:
    """A random MAC address under :data:`MAC_PREFIX`."""
    pick = rng or random.SystemRandom()
    return MAC_PREFIX + "".join(f":{pick.randrange(256):02x}" for _ in range(3))


def interface_element(bridge: str, mac: str, model: str = DEFAULT_NIC_MODEL) -> Element:
    """``<interface type='bridge'>`` on ``bridge`` with this MAC address and model."""
    interface = etree.Element("interface", type="bridge")
    etree.SubElement(interface, "mac", address=mac)
    etree.SubElement(interface, "source", bridge=bridge)
    etree.SubElement(interface, "model", type=model)
    return interface


def sriov_interface_element(mode: str, device: str, mac: str, model: str = DEFAULT_NIC_MODEL) -> Element:
    """An interface on an SR-IOV VF: ``macvtap`` (``<interface type='direct'>`` in passthrough
    mode on the VF's network device ``device``) or ``hostdev`` (the VF as a PCI device at
    address ``device``, ``0000:01:10.1``; the guest's own driver, so no model)."""
    if mode == "macvtap":
        interface = etree.Element("interface", type="direct")
        etree.SubElement(interface, "mac", address=mac)
        etree.SubElement(interface, "source", dev=device, mode="passthrough")
        etree.SubElement(interface, "model", type=model)
        return interface
    if mode != "hostdev":
        raise DomainXMLError(f"an SR-IOV mode is macvtap or hostdev, not '{mode}'")
    match = PCI_ADDRESS.fullmatch(device.strip().lower())
    if match is None:
        raise DomainXMLError(f"'{device}' is not a PCI address (0000:01:10.1)")
    domain, bus, slot, function = match.groups()
    interface = etree.Element("interface", type="hostdev", managed="yes")
    etree.SubElement(interface, "mac", address=mac)
    source = etree.SubElement(interface, "source")
    etree.SubElement(
        source,
        "address",
        type="pci",
        domain=f"0x{domain}",
        bus=f"0x{bus}",
        slot=f"0x{slot}",
        function=f"0x{function}",
    )
    return interface


def _pci_of(interface: Element) -> str:
    address = interface.find("source/address")
    if address is None:
        return ""
    try:
        parts = [int(address.get(key, ""), 0) for key in ("domain", "bus", "slot", "function")]
    except ValueError:
        return ""
    return f"{parts[0]:04x}:{parts[1]:02x}:{parts[2]:02x}.{parts[3]:x}"


def remove_sriov_interface(root: Element, vf: str, pci: str = "", mac: str | None = None) -> Element:
    """Remove the one interface on VF ``vf``: a ``direct`` interface on its network device, or
    a ``hostdev`` interface at its PCI address ``pci`` (if known); ``mac`` picks among several."""
    found = []
    for interface in _devices(root).findall("interface"):
        source = interface.find("source")
        kind = interface.get("type")
        on_vf = kind == "direct" and source is not None and source.get("dev") == vf
        at_pci = kind == "hostdev" and bool(pci) and _pci_of(interface) == pci.lower()
        if (on_vf or at_pci) and (mac is None or interface_mac(interface) == mac.lower()):
            found.append(interface)
    if not found:
        raise DomainXMLError(f"the VM has no interface on SR-IOV VF {vf}")
    if len(found) > 1:
        raise DomainXMLError(f"the VM has {len(found)} interfaces on VF {vf}; choose one by its MAC address")
    _remove(found[0])
    return found[0]


def interface_mac(interface: Element) -> str:
    """The MAC address of an ``<interface>`` (lower case; empty when missing)."""
    mac = interface.find("mac")
    return (mac.get("address") or "").lower() if mac is not None else ""


def interface_bridge(interface: Element) -> str:
    """The source bridge of an ``<interface>`` (empty when it has none)."""
    source = interface.find("source")
    return (source.get("bridge") or "") if source is not None else ""


def find_interfaces(root: Element, bridge: str | None = None, mac: str | None = None) -> list[Element]:
    """The interfaces on ``bridge`` and/or with MAC address ``mac`` (all of them when both are None)."""
    found = []
    for interface in _devices(root).findall("interface"):
        if bridge is not None and interface_bridge(interface) != bridge:
            continue
        if mac is not None and interface_mac(interface) != mac.lower():
            continue
        found.append(interface)
    return found


def add_interface(root: Element, interface: Element) -> None:
    """Add an interface; its MAC address must not be in use in this VM already."""
    mac = interface_mac(interface)
    if mac and find_interfaces(root, mac=mac):
        raise DomainXMLError(f"the VM already has an interface with MAC address {mac}")
    _insert_device(root, interface)


def remove_interface(root: Element, bridge: str | None = None, mac: str | None = None) -> Element:
    """Remove the one interface on ``bridge`` and/or with ``mac``; returns it."""
    if bridge is None and mac is None:
        raise DomainXMLError("give a network or a MAC address")
    found = find_interfaces(root, bridge, mac)
    wanted = " and ".join(
        part
        for part in (f"on bridge {bridge}" if bridge else "", f"with MAC address {mac}" if mac else "")
        if part
    )
    if not found:
        raise DomainXMLError(f"the VM has no interface {wanted}")
    if len(found) > 1:
        raise DomainXMLError(f"the VM has {len(found)} interfaces {wanted}; choose one by its MAC address")
    _remove(found[0])
    return found[0]


# Disks.


def drive_suffix(index: int) -> str:
    """The letters of drive number ``index``: 0 is ``a``, 25 ``z``, 26 ``aa``..."""
    letters = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def disk_targets(root: Element) -> list[str]:
    """The target device names in use (``sda``, ``vdb``...)."""
    return [
        target.get("dev", "")
        for target in (disk.find("target") for disk in _devices(root).findall("disk"))
        if target is not None
    ]


def next_target(root: Element, bus: str) -> str:
    """The first free target device name for a disk on ``bus``."""
    prefix = BUS_PREFIXES.get(bus)
    if prefix is None:
        raise DomainXMLError(f"unknown disk bus '{bus}'")
    used = set(disk_targets(root))
    index = 0
    while f"{prefix}{drive_suffix(index)}" in used:
        index += 1
    return f"{prefix}{drive_suffix(index)}"


def disk_source(disk: Element) -> str:
    """What a ``<disk>`` refers to: ``pool/volume`` for RBD, the path for a file or block device."""
    source = disk.find("source")
    if source is None:
        return ""
    return source.get("name") or source.get("file") or source.get("dev") or ""


def disk_element(volume: str, target: str, bus: str, disk_type: str = "rbd") -> Element:
    """A ``<disk>`` for an RBD volume (``POOL/VOLUME``) or a file (an absolute path)."""
    if bus not in BUS_PREFIXES:
        raise DomainXMLError(f"unknown disk bus '{bus}'")
    if not TARGET_DEVICE.fullmatch(target):
        raise DomainXMLError(f"'{target}' is not a disk target device name (like sdb or vdc)")
    if disk_type == "rbd":
        pool, _, name = volume.partition("/")
        if not pool or not name or "/" in name:
            raise DomainXMLError(f"an RBD volume is given as POOL/VOLUME, not '{volume}'")
        disk = etree.Element("disk", type="network", device="disk")
        etree.SubElement(disk, "driver", name="qemu", type="raw", cache="none")
        etree.SubElement(disk, "source", protocol="rbd", name=volume)
    elif disk_type == "file":
        if not volume.startswith("/"):
            raise DomainXMLError(f"a file volume is given by its absolute path, not '{volume}'")
        disk = etree.Element("disk", type="file", device="disk")
        etree.SubElement(disk, "driver", name="qemu", type="raw")
        etree.SubElement(disk, "source", file=volume)
    else:
        raise DomainXMLError(f"unknown disk type '{disk_type}' (one of {', '.join(DISK_TYPES)})")
    etree.SubElement(disk, "target", dev=target, bus=bus)
    return disk


def add_disk(root: Element, disk: Element) -> None:
    """Add a disk; neither its volume nor its target device may be in use in this VM already."""
    volume = disk_source(disk)
    if any(disk_source(other) == volume for other in _devices(root).findall("disk")):
        raise DomainXMLError(f"volume {volume} is already attached to the VM")
    target = disk.find("target")
    dev = target.get("dev", "") if target is not None else ""
    if dev in disk_targets(root):
        raise DomainXMLError(f"the VM already has a disk with target device {dev}")
    _insert_device(root, disk)


def remove_disk(root: Element, volume: str) -> Element:
    """Remove the disk of ``volume`` (``pool/volume`` or a path); returns it."""
    for disk in _devices(root).findall("disk"):
        if disk_source(disk) == volume:
            _remove(disk)
            return disk
    raise DomainXMLError(f"volume {volume} is not attached to the VM")
