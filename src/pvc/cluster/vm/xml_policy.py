"""The allowlist settings of this node's configuration, and the checks define/modify/hot-plug share.

The API checks client XML with the caller's role; the node daemon checks again, as admin,
before every start, migration and hot-plug (the role was checked when the XML was
accepted, but the node's own configuration — its image directory, its assignable
devices — is what decides what it will run).
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from pvc.cluster.errors import ClusterError
from pvc.config import NodeConfig, StorageSection
from pvc.domain_xml.allowlist import check_device, check_domain
from pvc.domain_xml.bridges import BRIDGE_PREFIX, vni_of_bridge
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.policy import XmlPolicy, split_assignable
from pvc.domain_xml.rules import canonical
from pvc.storage.cephx import bare_user
from pvc.storage.monitors import read_monitor_hosts


def node_policy(config: NodeConfig) -> XmlPolicy:
    """The allowlist settings of a node's configuration (without admin privilege)."""
    hypervisor, storage = config.hypervisor, config.storage
    pci, usb = split_assignable(hypervisor.assignable_devices)
    monitors = read_monitor_hosts(storage.ceph_conf) if storage.ceph_conf else frozenset()
    users = {bare_user(storage.vm_user)} if storage.vm_user else set()
    return XmlPolicy(
        image_dirs=tuple(str(path) for path in hypervisor.image_dirs),
        firmware_dirs=tuple(str(path) for path in hypervisor.firmware_dirs),
        assignable_pci=pci,
        assignable_usb=usb,
        ceph_monitors=monitors,
        ceph_users=frozenset(users),
    )


def vm_rbd_auth(storage: StorageSection) -> tuple[str, str] | None:
    """The VMs' cephx user (as libvirt names it) and its libvirt secret, when configured."""
    if not storage.vm_user or storage.vm_secret_uuid is None:
        return None
    return bare_user(storage.vm_user), str(storage.vm_secret_uuid)


def devices_of(xml: str) -> frozenset[str]:
    """The canonical text of every device of stored domain XML (what a change may keep)."""
    try:
        root = etree.fromstring(xml.encode())
    except etree.XMLSyntaxError:
        return frozenset()
    devices = root.find("devices")
    if devices is None:
        return frozenset()
    return frozenset(canonical(device) for device in devices if isinstance(device.tag, str))


def check_xml(root: etree._Element, policy: XmlPolicy) -> None:
    """ClusterError (400) naming what the allowlist refuses in a domain."""
    try:
        check_domain(root, policy)
    except DomainXMLError as error:
        raise ClusterError(f"The VM definition is not allowed: {error}") from None


def check_device_xml(element: etree._Element, policy: XmlPolicy) -> None:
    """ClusterError (400) naming what the allowlist refuses in a hot-plug device."""
    try:
        check_device(element, policy)
    except DomainXMLError as error:
        raise ClusterError(f"The device is not allowed: {error}") from None


def network_vnis(bridges: Iterable[str]) -> set[int]:
    """The VNIs of the PVC network bridges (``vmbr<VNI>``) among ``bridges``; others are not PVC's."""
    found = set()
    for bridge in bridges:
        vni = vni_of_bridge(bridge) if bridge.startswith(BRIDGE_PREFIX) else None
        if vni is not None:
            found.add(vni)
    return found


def check_network_bridges(bridges: Iterable[str], defined: Iterable[int], kept: Iterable[int] = ()) -> None:
    """ClusterError (400) naming each VNI whose bridge ``vmbr<VNI>`` an interface joins but that is
    not a defined client network. ``kept`` VNIs (those of the VM's stored XML) pass: a VM that
    predates its network's definition may still be changed. Other bridges are not checked here."""
    unknown = sorted(network_vnis(bridges) - set(defined) - set(kept))
    if unknown:
        listed = ", ".join(str(vni) for vni in unknown)
        raise ClusterError(
            f"No client network with VNI {listed} is defined; add it (pvc network add) "
            "before giving a VM an interface on it"
        )
