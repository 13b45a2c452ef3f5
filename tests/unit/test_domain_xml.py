import re

import pytest

from pvc.domain_xml import parse as domain_xml
from pvc.domain_xml.build import DomainSpec, build
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import parse

GOOD = """<domain type='qemu'>
  <name>vm1</name><uuid>0f8fad5b-d9cb-469f-a165-70867728950e</uuid>
  <memory unit='GiB'>2</memory><vcpu>2</vcpu>
  <devices>
    <disk type='network' device='disk'><source protocol='rbd' name='vms/vm1_disk0'/>
      <target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='sda' bus='sata'/></disk>
    <interface type='bridge'><mac address='52:54:00:12:34:56'/><source bridge='vmbr100'/>
      <model type='virtio'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <graphics type='vnc' listen='127.0.0.1' port='5901'/>
  </devices>
</domain>"""


def test_parse_reads_what_pvc_shows():
    _, summary = parse(GOOD)
    assert (summary.name, summary.uuid, summary.vcpus, summary.memory_mib) == (
        "vm1",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        2,
        2048,
    )
    assert [(d.target, d.kind, d.protocol, d.source) for d in summary.disks] == [
        ("vda", "network", "rbd", "vms/vm1_disk0"),
        ("sda", "file", "", "/iso/x.iso"),
    ]
    assert summary.nics[0].mac == "52:54:00:12:34:56" and summary.nics[0].source == "vmbr100"
    assert (summary.vnc_listen, summary.vnc_port) == ("127.0.0.1", 5901)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda x: x.replace("<name>vm1</name>", "<name>bad name!</name>"), "name 'bad name!' is invalid"),
        (lambda x: x.replace("<name>vm1</name>", ""), "name '' is invalid"),
        (lambda x: x.replace("<vcpu>2</vcpu>", "<vcpu>0</vcpu>"), "<vcpu> must be"),
        (lambda x: x.replace("<vcpu>2</vcpu>", "<vcpu>lots</vcpu>"), "<vcpu> must be"),
        (
            lambda x: x.replace("<memory unit='GiB'>2</memory>", "<memory unit='GiB'>9999</memory>"),
            "<memory> must",
        ),
        (lambda x: x.replace("unit='GiB'", "unit='parsec'"), "unknown unit"),
        (
            lambda x: x.replace("<uuid>0f8fad5b-d9cb-469f-a165-70867728950e</uuid>", "<uuid>nope</uuid>"),
            "not a UUID",
        ),
        (lambda x: x.replace("type='qemu'", "type='xen'", 1), "domain type must be"),
        (lambda x: x.replace("</domain>", ""), "not well-formed"),
        (lambda x: x.replace("<domain", "<network").replace("</domain>", "</network>"), "root element"),
        (
            lambda x: '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + x,
            "DOCTYPE",
        ),
        (lambda x: x + " " * (1024 * 1024), "larger than"),
        (lambda x: x.replace("port='5901'", "port='abc'"), "VNC port must be a number"),
    ],
)
def test_bad_domain_xml_is_refused_with_a_precise_message(change, words):
    with pytest.raises(DomainXMLError, match=None) as caught:
        parse(change(GOOD))
    assert words in str(caught.value)


def test_build_makes_a_valid_tcg_guest():
    xml = build(
        DomainSpec(
            name="lab-vm1",
            vcpus=1,
            memory_mib=128,
            kernel="/img/vmlinux",
            initrd="/img/initrd",
            cmdline="console=ttyS0",
            bridges=["br0"],
            disks=["/img/disk.raw"],
        )
    )
    root, summary = parse(xml)
    assert summary.name == "lab-vm1" and summary.memory_mib == 128 and summary.vcpus == 1
    assert root.findtext("os/kernel") == "/img/vmlinux" and root.find("features/tcg") is not None
    assert root.find("devices/serial").get("type") == "pty"
    assert [d.target for d in summary.disks] == ["vda"] and summary.nics[0].source == "br0"
    with pytest.raises(DomainXMLError):
        build(DomainSpec(name="x", vcpus=0))


NIC = "<interface type='bridge'><mac address='52:54:00:AA:BB:01'/><source bridge='br0'/></interface>"
DISK = "<disk type='file' device='disk'><source file='/x.img'/><target dev='vdb' bus='virtio'/></disk>"


def test_device_fragments_for_hotplug_are_parsed_and_matched():
    disk = domain_xml.parse_device(DISK)
    assert disk.kind == "disk" and disk.label == "disk vdb" and disk.disk.source == "/x.img"
    nic = domain_xml.parse_device(f"<!-- c -->{NIC}".encode())
    assert nic.kind == "interface" and nic.label == "interface 52:54:00:AA:BB:01" and "<!--" not in nic.xml
    spec = DomainSpec(name="d", disks=["/a.img", "/x.img"], bridges=["br0"])
    domain = build(spec)
    assert domain_xml.device_present(domain, disk)  # vdb is the second disk
    assert not domain_xml.device_present(domain, domain_xml.parse_device(DISK.replace("vdb", "vdc")))
    assert not domain_xml.device_present(domain, nic)  # built NICs get no fixed MAC
    assert domain_xml.device_present(
        domain, domain_xml.parse_device(NIC.replace("<mac address='52:54:00:AA:BB:01'/>", ""))
    )
    with_mac = domain.replace(
        '<source bridge="br0"/>', "<mac address='52:54:00:aa:bb:01'/><source bridge='br0'/>"
    )
    assert domain_xml.device_present(with_mac, nic)  # MACs compare without case


@pytest.mark.parametrize(
    ("xml", "words"),
    [
        ("", "empty"),
        ("<disk", "not well-formed"),
        ("<domain type='qemu'/>", "<disk> or <interface>"),
        ("<disk><source file='/x'/></disk>", "target"),
        ("<interface><source bridge='br0'/></interface>", "type"),
        ('<!DOCTYPE d [<!ENTITY e "x">]><disk/>', "DOCTYPE"),
        ("<disk>" + "x" * (domain_xml.MAX_XML_BYTES + 1) + "</disk>", "larger"),
    ],
)
def test_bad_device_fragments_are_refused_with_the_reason(xml, words):
    with pytest.raises(DomainXMLError, match=re.escape(words)):
        domain_xml.parse_device(xml)


def test_an_interface_without_a_type_does_not_break_parsing():
    _root, summary = parse(GOOD.replace("<interface type='bridge'>", "<interface>"))
    assert summary.nics[0].kind == "" and summary.nics[0].source == ""
