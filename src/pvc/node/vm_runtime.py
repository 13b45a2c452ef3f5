"""The domain XML a node hands libvirt: checked again here, with the console log the node chose.

The API checked the XML with the caller's role when it was stored; the node checks it
again, as admin, against its own configuration before every start and migration — a
definition restored from a backup, written before a rule existed, or meant for another
node's image directory never reaches libvirt unchecked. Paths the allowlist accepted are
resolved here too, so a symbolic link in the image directory cannot point elsewhere.

Every ``pty`` serial console gets a log file chosen by the node:
``<console_log_dir>/<VM name>.log``, the file whose tail the VM manager copies into
ZooKeeper for ``GET /vm/{vm}/console``.
"""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

from pvc.domain_xml.allowlist import check_domain
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import parse
from pvc.domain_xml.policy import XmlPolicy, inside


def console_log(console_dir: Path, name: str) -> Path:
    """Where the node writes VM ``name``'s serial console."""
    return console_dir / f"{name}.log"


def runtime_xml(xml: str, policy: XmlPolicy, console_dir: Path) -> str:
    """The XML to start (or migrate) a VM with; DomainXMLError saying why the node refuses it."""
    root, summary = parse(xml)
    check_domain(root, policy.as_admin())
    _check_real_paths(root, policy)
    _add_console_log(root, console_log(console_dir, summary.name))
    return etree.tostring(root, encoding="unicode")


def _check_real_paths(root: etree._Element, policy: XmlPolicy) -> None:
    """Every host file the XML names resolves (links followed) inside its directory."""
    named = [(element.text or "").strip() for element in root.findall("os/kernel")]
    named += [(element.text or "").strip() for element in root.findall("os/initrd")]
    named += [(element.text or "").strip() for element in root.findall("os/dtb")]
    named += [source.get("file", "") for source in root.findall("devices/disk[@type='file']/source")]
    image_dirs = [os.path.realpath(directory) for directory in policy.image_dirs]
    for path in filter(None, named):
        real = os.path.realpath(path)
        if not inside(real, image_dirs):
            raise DomainXMLError(f"'{path}' resolves to '{real}', outside the image directory")
    firmware_dirs = [os.path.realpath(directory) for directory in policy.firmware_dirs]
    for loader in root.findall("os/loader"):
        path = (loader.text or "").strip()
        if path and not inside(os.path.realpath(path), firmware_dirs):
            raise DomainXMLError(f"loader '{path}' resolves outside the firmware directories")


def _add_console_log(root: etree._Element, path: Path) -> None:
    """Log the first serial console (every console shares it) to ``path``."""
    for serial in root.findall("devices/serial"):
        for old in serial.findall("log"):
            serial.remove(old)
        log = etree.Element("log", file=str(path), append="on")
        target = serial.find("target")
        if target is not None:
            target.addprevious(log)
        else:
            serial.append(log)
        return
