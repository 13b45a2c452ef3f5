"""Domain XML edits (``pvc.domain_xml.edit``), as the CLI makes them."""

from __future__ import annotations

import random

import pytest

from pvc.domain_xml import edit as vm_xml
from pvc.domain_xml.bridges import bridge_name, vni_of_bridge
from pvc.domain_xml.edit import Topology
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import load

XML = """<domain type='kvm'>
  <name>vm1</name>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu current='1'>2</vcpu>
  <cpu mode='host-passthrough'><topology sockets='1' cores='2' threads='1'/></cpu>
  <devices>
    <disk type='network' device='disk'>
      <source protocol='rbd' name='vms/vm1_disk0'/>
      <target dev='sda' bus='scsi'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/iso/boot.iso'/>
      <target dev='sdb' bus='sata'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='vmbr100'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:02'/>
      <source bridge='vmbr100'/>
      <model type='virtio'/>
    </interface>
    <console type='pty'/>
  </devices>
</domain>
"""


@pytest.fixture
def root() -> vm_xml.Element:
    return load(XML)


def test_parse_rejects_bad_documents() -> None:
    with pytest.raises(DomainXMLError, match="not well-formed"):
        load("<domain>")
    with pytest.raises(DomainXMLError, match="must be <domain>"):
        load("<network/>")
    with pytest.raises(DomainXMLError, match="DOCTYPE"):
        load('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain>&x;</domain>')
    assert vm_xml.domain_name(load(XML)) == "vm1"
    assert load("<?xml version='1.0' encoding='UTF-8'?><domain/>").tag == "domain"


def test_command_line_values() -> None:
    assert vm_xml.parse_topology("2,2,1") == Topology(2, 2, 1)
    assert vm_xml.parse_topology("1/4/2").vcpus == 8
    assert str(Topology(1, 2, 3)) == "1,2,3"
    for bad in ("2,2", "0,1,1", "a,b,c"):
        with pytest.raises(DomainXMLError):
            vm_xml.parse_topology(bad)
    assert vm_xml.parse_count("4", "VCPUS") == 4
    with pytest.raises(DomainXMLError, match="VCPUS must be a positive whole number"):
        vm_xml.parse_count("0", "VCPUS")
    assert vm_xml.parse_memory("4096") == 4096
    assert vm_xml.parse_memory("512M") == 512
    assert vm_xml.parse_memory("4G") == 4096
    assert vm_xml.parse_memory("2GiB") == 2048
    assert vm_xml.parse_memory("1T") == 1024 * 1024
    for bad in ("0", "4X", "-1", "", "1.5G"):
        with pytest.raises(DomainXMLError):
            vm_xml.parse_memory(bad)
    assert vm_xml.parse_vni("0100") == "100"
    with pytest.raises(DomainXMLError, match="VNI"):
        vm_xml.parse_vni("vmbr100")
    assert vm_xml.normalize_mac("52-54-00-AA-BB-CC") == "52:54:00:aa:bb:cc"
    with pytest.raises(DomainXMLError, match="not a MAC address"):
        vm_xml.normalize_mac("52:54:00:aa:bb")


def test_vcpus(root: vm_xml.Element) -> None:
    assert vm_xml.read_vcpus(root) == (2, Topology(1, 2, 1))
    vm_xml.set_vcpus(root, 4, Topology(2, 2, 1))
    assert vm_xml.read_vcpus(root) == (4, Topology(2, 2, 1))
    assert root.find("vcpu").get("current") is None
    assert root.find("cpu").get("mode") == "host-passthrough"
    # A topology that no longer fits becomes 1 socket of N cores (as PVC v1 sets); one that fits stays.
    vm_xml.set_vcpus(root, 3)
    assert vm_xml.read_vcpus(root) == (3, Topology(1, 3, 1))
    with pytest.raises(DomainXMLError, match="topology 1,2,2 gives 4 vCPUs, not 3"):
        vm_xml.set_vcpus(root, 3, Topology(1, 2, 2))
    bare = load("<domain><name>x</name></domain>")
    vm_xml.set_vcpus(bare, 2, Topology(1, 1, 2))
    assert vm_xml.serialize(bare) == (
        "<domain><name>x</name><vcpu>2</vcpu>"
        '<cpu><topology sockets="1" cores="1" threads="2"/></cpu></domain>'
    )


def test_memory(root: vm_xml.Element) -> None:
    assert vm_xml.read_memory(root) == 2048
    vm_xml.set_memory(root, 4096)
    assert vm_xml.read_memory(root) == 4096
    for tag in ("memory", "currentMemory"):
        assert (root.find(tag).text, root.find(tag).get("unit")) == ("4096", "MiB")
    limited = load("<domain><maxMemory unit='GiB' slots='4'>8</maxMemory><memory>1</memory></domain>")
    with pytest.raises(DomainXMLError, match="maxMemory"):
        vm_xml.set_memory(limited, 16384)
    vm_xml.set_memory(limited, 8192)
    assert vm_xml.read_memory(limited) == 8192
    assert vm_xml.read_memory(load("<domain/>")) is None


def test_add_interface_after_the_last_one(root: vm_xml.Element) -> None:
    mac = vm_xml.random_mac(random.Random(1))
    assert mac.startswith("52:54:00:") and vm_xml.MAC_ADDRESS.fullmatch(mac)
    nic = vm_xml.interface_element(bridge_name(200), "52:54:00:12:34:56")
    assert vm_xml.serialize(nic) == (
        '<interface type="bridge"><mac address="52:54:00:12:34:56"/>'
        '<source bridge="vmbr200"/><model type="virtio"/></interface>'
    )
    vm_xml.add_interface(root, nic)
    text = vm_xml.serialize(root)
    assert '</interface>\n    <interface type="bridge"><mac address="52:54:00:12:34:56"/>' in text
    assert '<model type="virtio"/></interface>\n    <console type="pty"/>' in text
    assert [vm_xml.interface_bridge(i) for i in vm_xml.find_interfaces(root)] == ["vmbr100"] * 2 + ["vmbr200"]
    with pytest.raises(DomainXMLError, match="already has an interface with MAC address 52:54:00:00:00:01"):
        vm_xml.add_interface(root, vm_xml.interface_element("vmbr300", "52:54:00:00:00:01"))


def test_remove_interface(root: vm_xml.Element) -> None:
    with pytest.raises(DomainXMLError, match="2 interfaces on bridge vmbr100; choose one by its MAC address"):
        vm_xml.remove_interface(root, bridge="vmbr100")
    with pytest.raises(DomainXMLError, match="no interface on bridge vmbr999"):
        vm_xml.remove_interface(root, bridge="vmbr999")
    with pytest.raises(DomainXMLError, match="give a network or a MAC address"):
        vm_xml.remove_interface(root)
    removed = vm_xml.remove_interface(root, bridge="vmbr100", mac="52:54:00:00:00:02")
    assert vm_xml.interface_mac(removed) == "52:54:00:00:00:02"
    assert vm_xml.serialize(removed).startswith('<interface type="bridge">')
    assert not vm_xml.serialize(removed).endswith("\n    ")
    text = vm_xml.serialize(root)
    assert "52:54:00:00:00:02" not in text
    assert '</interface>\n    <console type="pty"/>' in text
    vm_xml.remove_interface(root, mac="52:54:00:00:00:01")
    assert vm_xml.find_interfaces(root) == []


def test_bridge_names() -> None:
    assert bridge_name("42") == "vmbr42"
    assert vni_of_bridge("vmbr42") == 42
    assert vni_of_bridge("brcluster") is None


def test_drive_names(root: vm_xml.Element) -> None:
    assert [vm_xml.drive_suffix(i) for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "a",
        "b",
        "z",
        "aa",
        "ab",
        "zz",
        "aaa",
    ]
    assert vm_xml.disk_targets(root) == ["sda", "sdb"]
    assert vm_xml.next_target(root, "scsi") == "sdc"
    assert vm_xml.next_target(root, "usb") == "sdc"
    assert vm_xml.next_target(root, "virtio") == "vda"
    assert vm_xml.next_target(root, "ide") == "hda"
    with pytest.raises(DomainXMLError, match="unknown disk bus"):
        vm_xml.next_target(root, "floppy")


def test_disk_elements() -> None:
    rbd = vm_xml.disk_element("vms/data", "sdc", "scsi")
    assert vm_xml.serialize(rbd) == (
        '<disk type="network" device="disk"><driver name="qemu" type="raw" cache="none"/>'
        '<source protocol="rbd" name="vms/data"/><target dev="sdc" bus="scsi"/></disk>'
    )
    file = vm_xml.disk_element("/srv/disk.img", "vdb", "virtio", "file")
    assert vm_xml.serialize(file) == (
        '<disk type="file" device="disk"><driver name="qemu" type="raw"/>'
        '<source file="/srv/disk.img"/><target dev="vdb" bus="virtio"/></disk>'
    )
    for args, message in (
        (("data", "sdc", "scsi"), "POOL/VOLUME"),
        (("a/b/c", "sdc", "scsi"), "POOL/VOLUME"),
        (("disk.img", "sdc", "scsi", "file"), "absolute path"),
        (("vms/data", "sdc", "scsi", "iscsi"), "unknown disk type"),
        (("vms/data", "sd1", "scsi"), "target device"),
        (("vms/data", "sdc", "fdc"), "unknown disk bus"),
    ):
        with pytest.raises(DomainXMLError, match=message):
            vm_xml.disk_element(*args)


def test_add_and_remove_disks(root: vm_xml.Element) -> None:
    vm_xml.add_disk(root, vm_xml.disk_element("vms/data", vm_xml.next_target(root, "scsi"), "scsi"))
    assert vm_xml.disk_targets(root) == ["sda", "sdb", "sdc"]
    text = vm_xml.serialize(root)
    assert '</disk>\n    <disk type="network" device="disk">' in text
    assert '<target dev="sdc" bus="scsi"/></disk>\n    <interface' in text
    with pytest.raises(DomainXMLError, match="volume vms/data is already attached"):
        vm_xml.add_disk(root, vm_xml.disk_element("vms/data", "sdd", "scsi"))
    with pytest.raises(DomainXMLError, match="already has a disk with target device sda"):
        vm_xml.add_disk(root, vm_xml.disk_element("vms/other", "sda", "scsi"))
    removed = vm_xml.remove_disk(root, "vms/vm1_disk0")
    assert vm_xml.disk_source(removed) == "vms/vm1_disk0"
    assert vm_xml.disk_targets(root) == ["sdb", "sdc"]
    assert vm_xml.serialize(root).startswith('<domain type="kvm">\n  <name>vm1</name>')
    assert '<devices>\n    <disk type="file" device="cdrom">' in vm_xml.serialize(root)
    with pytest.raises(DomainXMLError, match="volume vms/nothing is not attached"):
        vm_xml.remove_disk(root, "vms/nothing")
    vm_xml.remove_disk(root, "/iso/boot.iso")
    assert vm_xml.disk_targets(root) == ["sdc"]


def test_first_device_of_its_kind_and_empty_devices() -> None:
    root = load("<domain>\n  <devices>\n    <console type='pty'/>\n  </devices>\n</domain>")
    vm_xml.add_disk(root, vm_xml.disk_element("vms/a", "vda", "virtio"))
    text = vm_xml.serialize(root)
    assert text.startswith('<domain>\n  <devices>\n    <console type="pty"/>\n    <disk ')
    assert text.endswith("</disk>\n  </devices>\n</domain>")
    vm_xml.remove_disk(root, "vms/a")
    assert (
        vm_xml.serialize(root) == '<domain>\n  <devices>\n    <console type="pty"/>\n  </devices>\n</domain>'
    )
    bare = load("<domain><name>x</name></domain>")
    vm_xml.add_interface(bare, vm_xml.interface_element("vmbr1", "52:54:00:00:00:09", "e1000"))
    assert bare.find("devices/interface/model").get("type") == "e1000"
    vm_xml.remove_interface(bare, mac="52:54:00:00:00:09")
    assert vm_xml.serialize(bare) == "<domain><name>x</name><devices/></domain>"


NO_TOPOLOGY = "<domain><name>x</name><vcpu>3</vcpu><cpu mode='host-passthrough'/></domain>"


@pytest.mark.parametrize("xml", [NO_TOPOLOGY, NO_TOPOLOGY.replace("<cpu mode='host-passthrough'/>", "")])
def test_vcpus_without_a_topology(xml: str) -> None:
    root = load(xml)
    assert vm_xml.read_vcpus(root) == (3, None)
    assert vm_xml.effective_vcpus(root) == (3, Topology(1, 3, 1))
    vm_xml.set_vcpus(root, 4)
    assert vm_xml.read_vcpus(root) == (4, Topology(1, 4, 1))
    assert len(root.findall("cpu")) == 1 and len(root.findall("cpu/topology")) == 1
    assert ("mode" in root.find("cpu").attrib) == ("host-passthrough" in xml)
    # a topology that fits is kept when none is given
    vm_xml.set_vcpus(root, 4, Topology(2, 2, 1))
    vm_xml.set_vcpus(root, 4)
    assert vm_xml.read_vcpus(root) == (4, Topology(2, 2, 1))
    assert vm_xml.effective_vcpus(load("<domain><name>x</name></domain>")) == (None, None)
