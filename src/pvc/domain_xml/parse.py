"""Reading and checking untrusted domain XML.

Clients send domain XML to the API; it is untrusted. :func:`parse` reads it without
entity expansion or network access, rejects a missing or bad name and out-of-range
sizes, and returns a :class:`DomainSummary`; what a VM may use of the node is checked by
:mod:`pvc.domain_xml.allowlist`. :func:`parse_device` does the same for one hot-plug device, and
:func:`load` only reads a document (keeping its comments) for editing.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from dataclasses import dataclass, field

from lxml import etree

from pvc.domain_xml.device_rules import GUEST_AGENT
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.units import unit_bytes

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
MAX_VCPUS = 256
MAX_MEMORY_MIB = 4 * 1024 * 1024
MAX_XML_BYTES = 1024 * 1024
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True, load_dtd=False
)
#: The same, keeping comments: for documents that are edited and sent back.
_EDIT_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


@dataclass(frozen=True)
class Disk:
    device: str  # disk | cdrom
    target: str  # vda, sda...
    bus: str
    source: str  # file path, or pool/volume for rbd
    kind: str  # file | network | block
    protocol: str = ""  # rbd for network disks


@dataclass(frozen=True)
class Nic:
    mac: str
    kind: str  # bridge | network | direct
    source: str
    model: str


@dataclass(frozen=True)
class DomainSummary:
    """What PVC reads from a domain definition."""

    name: str
    uuid: str
    domain_type: str
    vcpus: int
    memory_mib: int
    disks: list[Disk] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    vnc_listen: str = ""
    vnc_port: int = -1


def _memory_mib(element: etree._Element | None) -> int:
    if element is None or not (element.text or "").strip():
        raise DomainXMLError("<memory> is required")
    unit = unit_bytes(element.get("unit"))
    if unit is None:
        raise DomainXMLError(f"<memory> has an unknown unit '{element.get('unit')}'")
    try:
        value = int(element.text.strip())
    except ValueError:
        raise DomainXMLError(f"<memory> is not a whole number: '{element.text.strip()}'") from None
    return value * unit // 2**20


def parse(text: str | bytes) -> tuple[etree._Element, DomainSummary]:
    """Validate untrusted domain XML; returns the tree and its summary."""
    raw = text.encode() if isinstance(text, str) else text
    root = _tree(raw, "domain XML")
    if root.tag != "domain":
        raise DomainXMLError(f"the root element must be <domain>, not <{root.tag}>")
    domain_type = root.get("type", "")
    if domain_type not in ("kvm", "qemu"):
        raise DomainXMLError(f"domain type must be 'kvm' or 'qemu', not '{domain_type}'")
    name = (root.findtext("name") or "").strip()
    if not NAME.fullmatch(name):
        raise DomainXMLError(f"domain name '{name}' is invalid: 1-63 letters, digits, '.', '_', '-'")
    uuid_text = (root.findtext("uuid") or "").strip()
    if uuid_text:
        try:
            uuid_text = str(uuid_mod.UUID(uuid_text))
        except ValueError:
            raise DomainXMLError(f"<uuid> '{uuid_text}' is not a UUID") from None
    vcpu_text = (root.findtext("vcpu") or "").strip()
    if not vcpu_text.isdigit() or not 1 <= int(vcpu_text) <= MAX_VCPUS:
        raise DomainXMLError(f"<vcpu> must be a whole number from 1 to {MAX_VCPUS}, not '{vcpu_text}'")
    memory = _memory_mib(root.find("memory"))
    if not 1 <= memory <= MAX_MEMORY_MIB:
        raise DomainXMLError(f"<memory> must be between 1 MiB and {MAX_MEMORY_MIB} MiB")
    vnc_listen, vnc_port = _vnc(root)
    return root, DomainSummary(
        name=name,
        uuid=uuid_text,
        domain_type=domain_type,
        vcpus=int(vcpu_text),
        memory_mib=memory,
        disks=[_disk(d) for d in root.findall("devices/disk")],
        nics=[_nic(n) for n in root.findall("devices/interface")],
        vnc_listen=vnc_listen,
        vnc_port=vnc_port,
    )


#: Devices that can be hot-plugged into (and out of) a running VM.
HOTPLUG_DEVICES = ("disk", "interface")


@dataclass(frozen=True)
class Device:
    """A device XML fragment for hot attach/detach, validated by :func:`parse_device`."""

    kind: str  # one of HOTPLUG_DEVICES
    xml: str  # the fragment, re-serialised (comments dropped)
    disk: Disk | None = None
    nic: Nic | None = None

    @property
    def label(self) -> str:
        """A short description for messages: "disk vdb" or "interface 52:54:00:..."."""
        if self.disk is not None:
            return f"disk {self.disk.target or self.disk.source}"
        if self.nic is not None:
            return f"interface {self.nic.mac or self.nic.source}"
        return self.kind


def _read(raw: bytes, what: str, parser: etree.XMLParser = _PARSER) -> etree._Element:
    """Parse XML with no DTD, entities or network access."""
    if len(raw) > MAX_XML_BYTES:
        raise DomainXMLError(f"{what} is larger than {MAX_XML_BYTES} bytes")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise DomainXMLError(f"{what} must not contain a DOCTYPE or entity declarations")
    try:
        return etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as error:
        raise DomainXMLError(f"{what} is not well-formed: {error}") from None


def load(text: str) -> etree._Element:
    """Read a domain document to edit it (comments kept, nothing checked but safety and the root)."""
    root = _read(text.encode(), "the domain XML", _EDIT_PARSER)
    if root.tag != "domain":
        raise DomainXMLError(f"the root element must be <domain>, not <{root.tag}>")
    return root


def pretty(xml: str) -> str:
    """Stored XML as the API returns it: re-serialised (comments dropped) so formatting is uniform."""
    try:
        root = etree.fromstring(xml.encode(), _PARSER)
    except etree.XMLSyntaxError:
        return xml
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def _tree(raw: bytes, what: str) -> etree._Element:
    """Parse untrusted XML (what it may contain is :mod:`pvc.domain_xml.allowlist`'s business)."""
    return _read(raw, what)


def parse_device(text: str | bytes) -> Device:
    """Validate an untrusted ``<disk>`` or ``<interface>`` fragment for hot attach/detach."""
    raw = text.encode() if isinstance(text, str) else text
    if not raw.strip():
        raise DomainXMLError("device XML is empty")
    root = _tree(raw, "device XML")
    if root.tag not in HOTPLUG_DEVICES:
        allowed = " or ".join(f"<{tag}>" for tag in HOTPLUG_DEVICES)
        raise DomainXMLError(f"device XML must be one {allowed} element, not <{root.tag}>")
    xml = etree.tostring(root, encoding="unicode")
    if root.tag == "disk":
        disk = _disk(root)
        if not disk.target:
            raise DomainXMLError("a disk needs <target dev='...'/> to be attached or detached")
        return Device(kind="disk", xml=xml, disk=disk)
    if not root.get("type"):
        raise DomainXMLError("an interface needs a type (bridge, network...)")
    return Device(kind="interface", xml=xml, nic=_nic(root))


def device_present(domain_text: str, device: Device) -> bool:
    """Whether the domain XML ``domain_text`` has ``device`` (a disk by target, a NIC by MAC).

    A NIC fragment without a MAC matches any interface on the same source.
    """
    root = etree.fromstring(domain_text.encode(), _PARSER)
    if device.disk is not None:
        return any(_disk(found).target == device.disk.target for found in root.findall("devices/disk"))
    if device.nic is not None:
        nics = [_nic(found) for found in root.findall("devices/interface")]
        if device.nic.mac:
            return any(nic.mac.lower() == device.nic.mac.lower() for nic in nics)
        return any(nic.source == device.nic.source for nic in nics)
    return False


def rbd_volumes(xml: str) -> list[tuple[str, str]]:
    """``(pool, volume)`` of each RBD disk of a domain XML, in device order, without repeats.

    DomainXMLError if the XML cannot be parsed. Snapshots (``pool/volume@snap``) are
    left out: they are opened read-only and never locked.
    """
    _, summary = parse(xml)
    found: list[tuple[str, str]] = []
    for disk in summary.disks:
        if disk.protocol != "rbd" or "/" not in disk.source:
            continue
        pool, _, volume = disk.source.partition("/")
        if not pool or not volume or "@" in volume:
            continue
        if (pool, volume) not in found:
            found.append((pool, volume))
    return found


def has_guest_agent(xml: str) -> bool:
    """Whether the domain has the QEMU guest agent's channel (DomainXMLError if unparseable)."""
    root, _ = parse(xml)
    return any(target.get("name") == GUEST_AGENT for target in root.findall("devices/channel/target"))


def _disk(element: etree._Element) -> Disk:
    source = element.find("source")
    target = element.find("target")
    kind = element.get("type", "file")
    if source is None:
        path = ""
    elif kind == "network":
        path = source.get("name", "")
    else:
        path = source.get("file") or source.get("dev") or ""
    return Disk(
        device=element.get("device", "disk"),
        target=target.get("dev", "") if target is not None else "",
        bus=target.get("bus", "") if target is not None else "",
        source=path,
        kind=kind,
        protocol=source.get("protocol", "") if source is not None else "",
    )


def _nic(element: etree._Element) -> Nic:
    mac = element.find("mac")
    source = element.find("source")
    model = element.find("model")
    kind = element.get("type", "")
    return Nic(
        mac=mac.get("address", "") if mac is not None else "",
        kind=kind,
        source=((kind and source.get(kind)) or source.get("dev") or "") if source is not None else "",
        model=model.get("type", "") if model is not None else "",
    )


def _vnc(root: etree._Element) -> tuple[str, int]:
    graphics = root.find("devices/graphics[@type='vnc']")
    if graphics is None:
        return "", -1
    port = (graphics.get("port") or "-1").strip()
    if not port.lstrip("-").isdigit() or not -1 <= int(port) <= 65535:
        raise DomainXMLError(f"the VNC port must be a number from -1 to 65535, not '{port}'")
    return graphics.get("listen", ""), int(port)
