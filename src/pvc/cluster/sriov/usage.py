"""Which VFs a VM's domain XML uses: ``direct`` interfaces (macvtap) name the VF's network
device, ``hostdev`` interfaces and PCI ``hostdev`` devices its PCI address. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import load

MACVTAP, HOSTDEV = "macvtap", "hostdev"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class VfReference:
    """A VF a domain uses: ``mode`` macvtap (``device`` is its network device) or hostdev
    (``device`` is its PCI address, ``0000:01:10.0``). ``interface`` is False for a PCI
    ``<hostdev>`` device, which may also pass through a device that is no VF."""

    mode: str
    device: str
    interface: bool = True


def pci_address(address: etree._Element | None) -> str:
    """``0000:01:10.0`` from libvirt's ``<address domain= bus= slot= function=/>`` ("" if incomplete)."""
    if address is None:
        return ""
    try:
        domain, bus, slot, function = (
            int(address.get(key, ""), 0) for key in ("domain", "bus", "slot", "function")
        )
    except ValueError:
        return ""
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"


@lru_cache(maxsize=4096)
def vf_references(xml: str) -> tuple[VfReference, ...]:
    """The VFs (or any PCI network device) ``xml`` uses, in document order; none for XML that
    does not parse (the stored XML passed the allowlist, so that does not happen)."""
    try:
        root = load(xml)
    except DomainXMLError:
        return ()
    return _references(root)


def device_references(xml: str) -> tuple[VfReference, ...]:
    """The VFs one device (an ``<interface>`` or ``<hostdev>`` of a hot-plug) uses."""
    try:
        device = etree.fromstring(xml.encode(), _PARSER)
    except etree.XMLSyntaxError:
        return ()
    root = etree.Element("domain")
    etree.SubElement(root, "devices").append(device)
    return _references(root)


def _references(root: etree._Element) -> tuple[VfReference, ...]:
    found = []
    for interface in root.iterfind("devices/interface"):
        source = interface.find("source")
        if source is None:
            continue
        kind = interface.get("type")
        if kind == "direct" and source.get("dev"):
            found.append(VfReference(MACVTAP, source.get("dev", "")))
        elif kind == "hostdev":
            address = pci_address(source.find("address"))
            if address:
                found.append(VfReference(HOSTDEV, address))
    for hostdev in root.iterfind("devices/hostdev"):
        if hostdev.get("type") == "pci":
            address = pci_address(hostdev.find("source/address"))
            if address:
                found.append(VfReference(HOSTDEV, address, interface=False))
    return tuple(found)
