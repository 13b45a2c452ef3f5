"""Pointing a domain's RBD disks at another cluster's Ceph: pools, monitors and cephx auth.

A VM copied between clusters keeps its disks' volume names, but their pool may differ and
the monitors and the libvirt secret of the cephx user are the receiving cluster's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lxml import etree

from pvc.domain_xml.parse import load


def retarget_rbd_disks(
    xml: str,
    *,
    pools: Mapping[str, str] | None = None,
    monitors: Sequence[tuple[str, int]] | None = None,
    auth: tuple[str, str] | None = None,
    keep_auth: bool = False,
) -> str:
    """``xml`` with each RBD disk's pool renamed through ``pools``, its monitor hosts replaced
    by ``monitors`` (when given) and its ``<auth>`` replaced by ``auth`` (user, secret UUID),
    or removed when ``auth`` is None unless ``keep_auth``."""
    root = load(xml)
    for disk in root.findall("devices/disk"):
        source = disk.find("source")
        if source is None or source.get("protocol") != "rbd":
            continue
        pool, _, volume = (source.get("name") or "").partition("/")
        if pools and pool in pools:
            source.set("name", f"{pools[pool]}/{volume}")
        if monitors is not None:
            for host in source.findall("host"):
                source.remove(host)
            for address, port in monitors:
                etree.SubElement(source, "host", name=address, port=str(port))
        if keep_auth:
            continue
        for old in disk.findall("auth"):
            disk.remove(old)
        if auth is not None:
            element = etree.Element("auth", username=auth[0])
            etree.SubElement(element, "secret", type="ceph", uuid=auth[1])
            source.addprevious(element)
    return etree.tostring(root, pretty_print=True, encoding="unicode")
