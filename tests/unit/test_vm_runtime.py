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
