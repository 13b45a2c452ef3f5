"""Building the domain XML of a simple VM from a spec (the lab's guests, benches, tests)."""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass, field

from lxml import etree

from pvc.domain_xml.parse import parse


@dataclass(frozen=True)
class RbdDisk:
    """A disk on a Ceph RBD volume, reached by QEMU's rbd driver through ``monitors``.

    ``monitors`` are (address, port) pairs; with cephx on, ``auth_user`` and the uuid of
    the libvirt secret holding its key.
    """

    pool: str
    volume: str
    monitors: list[tuple[str, int]] = field(default_factory=list)
    auth_user: str = ""
    secret_uuid: str = ""


@dataclass(frozen=True)
class DomainSpec:
    """A simple VM to build XML for (direct kernel boot and/or disks, bridged NICs)."""

    name: str
    vcpus: int = 1
    memory_mib: int = 128
    uuid: str = ""
    domain_type: str = "qemu"
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    disks: list[str] = field(default_factory=list)  # file paths
    rbd_disks: list[RbdDisk] = field(default_factory=list)  # after the file disks
    bridges: list[str] = field(default_factory=list)
    #: MAC address of the NIC on each of ``bridges``, in order (missing or "": libvirt picks one).
    macs: list[str] = field(default_factory=list)
    serial: bool = True  # a pty serial console (the node chooses where its log goes)
    #: A VNC console listening on this address ("" = no VNC console).
    vnc_listen: str = ""
    tb_cache_mib: int = 32


def _rbd_disk(devices: etree._Element, rbd: RbdDisk, target: str) -> None:
    disk = etree.SubElement(devices, "disk", type="network", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="raw", cache="none", discard="unmap")
    source = etree.SubElement(disk, "source", protocol="rbd", name=f"{rbd.pool}/{rbd.volume}")
    for address, port in rbd.monitors:
        etree.SubElement(source, "host", name=address, port=str(port))
    if rbd.auth_user:
        auth = etree.SubElement(disk, "auth", username=rbd.auth_user)
        etree.SubElement(auth, "secret", type="ceph", uuid=rbd.secret_uuid)
    etree.SubElement(disk, "target", dev=target, bus="virtio")


def build(spec: DomainSpec) -> str:
    """Domain XML for ``spec``; validated by :func:`parse` before it is returned."""
    domain = etree.Element("domain", type=spec.domain_type)
    etree.SubElement(domain, "name").text = spec.name
    etree.SubElement(domain, "uuid").text = spec.uuid or str(uuid_mod.uuid4())
    etree.SubElement(domain, "memory", unit="MiB").text = str(spec.memory_mib)
    etree.SubElement(domain, "vcpu").text = str(spec.vcpus)
    os_element = etree.SubElement(domain, "os")
    etree.SubElement(os_element, "type", arch="x86_64", machine="pc").text = "hvm"
    if spec.kernel:
        etree.SubElement(os_element, "kernel").text = spec.kernel
        if spec.initrd:
            etree.SubElement(os_element, "initrd").text = spec.initrd
        etree.SubElement(os_element, "cmdline").text = spec.cmdline
    features = etree.SubElement(domain, "features")
    etree.SubElement(features, "acpi")
    if spec.domain_type == "qemu":
        tcg = etree.SubElement(features, "tcg")
        etree.SubElement(tcg, "tb-cache", unit="MiB").text = str(spec.tb_cache_mib)
    etree.SubElement(domain, "clock", offset="utc")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        etree.SubElement(domain, event).text = action
    devices = etree.SubElement(domain, "devices")
    etree.SubElement(devices, "emulator").text = "/usr/bin/qemu-system-x86_64"
    etree.SubElement(devices, "controller", type="usb", model="none")
    etree.SubElement(devices, "memballoon", model="none")
    for index, path in enumerate(spec.disks):
        disk = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(disk, "driver", name="qemu", type="raw", cache="none")
        etree.SubElement(disk, "source", file=path)
        etree.SubElement(disk, "target", dev=f"vd{chr(ord('a') + index)}", bus="virtio")
    for index, rbd in enumerate(spec.rbd_disks, start=len(spec.disks)):
        _rbd_disk(devices, rbd, f"vd{chr(ord('a') + index)}")
    for index, bridge in enumerate(spec.bridges):
        nic = etree.SubElement(devices, "interface", type="bridge")
        mac = spec.macs[index] if index < len(spec.macs) else ""
        if mac:
            etree.SubElement(nic, "mac", address=mac)
        etree.SubElement(nic, "source", bridge=bridge)
        etree.SubElement(nic, "model", type="virtio")
    if spec.serial:
        serial = etree.SubElement(devices, "serial", type="pty")
        etree.SubElement(serial, "target", port="0")
    if spec.vnc_listen:
        etree.SubElement(devices, "graphics", type="vnc", port="-1", autoport="yes", listen=spec.vnc_listen)
    text = etree.tostring(domain, pretty_print=True, encoding="unicode")
    parse(text)
    return text
