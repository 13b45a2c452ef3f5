"""SR-IOV records and VMs that use VFs, written to a real ZooKeeper for the API and domain tests.

Node hv1 has PF ens1f0 (VFs ens1f0v0-ens1f0v3) and PF ens1f1 (VF ens1f1v0); hv2 has ens1f0 with
ens1f0v0 and ens1f0v1. VM ``mac1`` (on hv1) uses hv1's ens1f0v0 through macvtap, ``pci1`` (on hv1,
stopped) uses ens1f0v1 as a PCI device, ``mac2`` (on hv2) uses hv2's ens1f0v0: the same VF name
on another node, which leaves hv1's free.
"""

from __future__ import annotations

import uuid

from pvc.domain_xml import build
from pvc.state import nodes, vms
from pvc.state import sriov as records
from pvc.state.records import NodeStatic
from pvc.state.sriov import SriovPf, SriovVf
from pvc.state.states import VMState
from pvc.state.store import Commit, Store
from pvc.state.vms import VmMeta, VmPlacement


def vf(name: str, pf: str, index: int, bus: int = 1, **config: object) -> SriovVf:
    """A VF record at PCI address ``0000:<bus>:10.<index>`` with the reported ``config``."""
    return SriovVf(
        phy=name,
        pf=pf,
        index=index,
        pci=f"0000:{bus:02x}:10.{index}",
        mac=f"52:54:00:{bus:02x}:10:{index:02x}",
        mtu=1500,
        config=config,
    )


REPORTED = {"vlan_id": 0, "vlan_qos": 0, "tx_rate_min": 0, "tx_rate_max": 0}
REPORTED |= {"spoof_check": True, "link_state": "auto", "trust": False, "query_rss": False}

HV1_PFS = [
    SriovPf(phy="ens1f0", mtu=9000, total_vfs=8, vfs=[f"ens1f0v{i}" for i in range(4)]),
    SriovPf(phy="ens1f1", mtu=1500, total_vfs=8, vfs=["ens1f1v0"]),
]
HV1_VFS = [vf(f"ens1f0v{i}", "ens1f0", i, **REPORTED) for i in range(4)] + [
    vf("ens1f1v0", "ens1f1", 0, bus=2, **REPORTED)
]
HV2_PFS = [SriovPf(phy="ens1f0", mtu=9000, total_vfs=8, vfs=["ens1f0v0", "ens1f0v1"])]
HV2_VFS = [vf(f"ens1f0v{i}", "ens1f0", i, bus=3, **REPORTED) for i in range(2)]


def macvtap_xml(name: str, vm_uuid: str, device: str) -> str:
    """A VM with a ``direct`` (macvtap) interface on network device ``device``."""
    xml = build.build(build.DomainSpec(name=name, memory_mib=64, uuid=vm_uuid))
    nic = (
        "<interface type='direct'><mac address='52:54:00:12:34:56'/>"
        f"<source dev='{device}' mode='passthrough'/><model type='virtio'/></interface>"
    )
    return xml.replace("</devices>", nic + "</devices>")


def hostdev_xml(name: str, vm_uuid: str, pci: str) -> str:
    """A VM with a ``hostdev`` interface on the PCI device at ``pci`` (``0000:01:10.1``)."""
    domain, bus, rest = pci.split(":")
    slot, function = rest.split(".")
    xml = build.build(build.DomainSpec(name=name, memory_mib=64, uuid=vm_uuid))
    nic = (
        "<interface type='hostdev' managed='yes'><mac address='52:54:00:12:34:57'/><source>"
        f"<address type='pci' domain='0x{domain}' bus='0x{bus}' slot='0x{slot}' function='0x{function}'/>"
        "</source></interface>"
    )
    return xml.replace("</devices>", nic + "</devices>")


def add_vm(
    store: Store, name: str, node: str, xml_of, device: str, state: str = VMState.START
) -> tuple[str, Commit]:
    """Create VM ``name`` on ``node`` whose XML (``xml_of(name, uuid, device)``) uses ``device``."""
    vm_uuid = str(uuid.uuid4())
    commit = vms.create_vm(
        store,
        VmMeta(name=name, uuid=vm_uuid),
        VmPlacement(state=state, node=node),
        xml_of(name, vm_uuid, device),
    )
    return vm_uuid, commit


def populate(store: Store) -> tuple[dict[str, str], Commit]:
    """Register hv1 and hv2 with their SR-IOV records and add the three VMs; returns the VMs'
    UUIDs by name and everything committed (for a cache to wait for)."""
    commit = nodes.register(store, NodeStatic(name="hv1")) + nodes.register(store, NodeStatic(name="hv2"))
    commit += records.record_sriov(store, "hv1", HV1_PFS, HV1_VFS)
    commit += records.record_sriov(store, "hv2", HV2_PFS, HV2_VFS)
    uuids = {}
    for name, node, xml_of, device, state in (
        ("mac1", "hv1", macvtap_xml, "ens1f0v0", VMState.START),
        ("pci1", "hv1", hostdev_xml, "0000:01:10.1", VMState.STOP),
        ("mac2", "hv2", macvtap_xml, "ens1f0v0", VMState.START),
    ):
        uuids[name], written = add_vm(store, name, node, xml_of, device, state)
        commit += written
    return uuids, commit
