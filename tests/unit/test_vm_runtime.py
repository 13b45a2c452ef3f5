"""The node's own check of a VM definition before it starts or migrates it."""

from __future__ import annotations

import os

import pytest
from lxml import etree

from pvc.domain_xml.build import DomainSpec, build
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.policy import XmlPolicy
from pvc.node.vm_runtime import console_log, runtime_xml


def test_the_node_chooses_the_console_log(tmp_path):
    xml = build(DomainSpec(name="vm1"))
    out = etree.fromstring(runtime_xml(xml, XmlPolicy(), tmp_path / "console"))
    log = out.find("devices/serial/log")
    assert log is not None and log.get("file") == str(console_log(tmp_path / "console", "vm1"))
    assert log.get("append") == "on"


def test_a_definition_that_bypassed_the_api_is_refused(tmp_path):
    xml = build(DomainSpec(name="vm1")).replace(
        '<serial type="pty">', "<serial type='file'><source path='/etc/shadow'/>"
    )
    with pytest.raises(DomainXMLError, match="'pty'"):
        runtime_xml(xml, XmlPolicy(), tmp_path)


def test_a_link_in_the_image_directory_cannot_point_outside(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "vmlinux").write_bytes(b"kernel")
    os.symlink("/etc/shadow", images / "initrd")
    policy = XmlPolicy(image_dirs=(str(images),))
    good = build(DomainSpec(name="vm1", kernel=str(images / "vmlinux")))
    assert "vmlinux" in runtime_xml(good, policy, tmp_path)
    linked = build(DomainSpec(name="vm1", kernel=str(images / "vmlinux"), initrd=str(images / "initrd")))
    with pytest.raises(DomainXMLError, match="resolves to '/etc/shadow'"):
        runtime_xml(linked, policy, tmp_path)
    disk = build(DomainSpec(name="vm1", disks=[str(images / "initrd")]))
    with pytest.raises(DomainXMLError, match="outside the image directory"):
        runtime_xml(disk, policy, tmp_path)


def test_rbd_disks_without_a_user_get_the_vm_user(tmp_path):
    from pvc.domain_xml.build import RbdDisk

    secret = "0f8fad5b-d9cb-469f-a165-70867728950e"
    xml = build(
        DomainSpec(name="vm1", rbd_disks=[RbdDisk("vms", "a"), RbdDisk("vms", "b", [], "pvc-vm", secret)])
    )
    policy = XmlPolicy(ceph_users=frozenset({"pvc-vm"}))
    out = etree.fromstring(runtime_xml(xml, policy, tmp_path, ("pvc-vm", secret)))
    auths = [disk.find("auth") for disk in out.findall("devices/disk")]
    assert [(a.get("username"), a.find("secret").get("uuid")) for a in auths] == [("pvc-vm", secret)] * 2
    assert (
        etree.fromstring(runtime_xml(xml, policy, tmp_path)).findall("devices/disk")[0].find("auth") is None
    )
