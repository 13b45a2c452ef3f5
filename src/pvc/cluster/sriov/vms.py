"""SR-IOV rules for VMs: which VFs a VM's XML may name, and where a VM with VFs may go.

A ``direct`` (macvtap) or ``hostdev`` interface must name a VF recorded for the VM's node (by
its network device, or by its PCI address) that no other VM assigned to the node uses; the
allowlist (:attr:`pvc.domain_xml.policy.XmlPolicy.sriov_vfs`) refuses every other such
interface. A PCI ``<hostdev>`` device that is a VF must be free the same way.

A VM keeps its XML when it moves, so the target must have the same VF free: a VF of the same
name and PF for macvtap, a VF at the same PCI address for hostdev. A VM with a hostdev VF
cannot move live: its migrations are by shutdown (see :func:`live_refusal`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.session import Cluster
from pvc.cluster.sriov.queries import users, vfs
from pvc.cluster.sriov.usage import HOSTDEV, MACVTAP, VfReference, vf_references
from pvc.domain_xml.policy import XmlPolicy
from pvc.state import sriov as records
from pvc.state.sriov import SriovVf
from pvc.state.states import MigrationMethod
from pvc.state.store import Store
from pvc.state.vms import VmRecord


def vf_ids(functions: Iterable[SriovVf]) -> frozenset[str]:
    """What an interface may name of ``functions``: their network devices and PCI addresses."""
    found: set[str] = set()
    for function in functions:
        found.add(function.phy)
        if function.pci:
            found.add(function.pci)
    return frozenset(found)


def with_node_vfs(policy: XmlPolicy, cluster: Cluster, node: str | None) -> XmlPolicy:
    """``policy`` allowing the VFs recorded for ``node`` (for every node when None)."""
    cache = cluster.cache
    names = [node] if node else [record.name for record in cache.nodes()]
    found: set[str] = set()
    for name in names:
        if cache.node(name) is not None:
            found |= vf_ids(vfs(cluster, name))
    return replace(policy, sriov_vfs=frozenset(found))


def with_store_vfs(policy: XmlPolicy, store: Store, node: str) -> XmlPolicy:
    """``policy`` allowing the VFs ``node`` recorded, read from the store (for a node's task)."""
    return replace(policy, sriov_vfs=vf_ids(records.read_vfs(store.children, store.get, node)))


def _match(functions: list[SriovVf], reference: VfReference) -> SriovVf | None:
    for function in functions:
        if reference.mode == MACVTAP and function.phy == reference.device:
            return function
        if reference.mode == HOSTDEV and function.pci and function.pci == reference.device:
            return function
    return None


def _vm_name(cluster: Cluster, uuid: str) -> str:
    record = cluster.cache.vm(uuid)
    return record.meta.name if record is not None else uuid


def check_references(cluster: Cluster, node: str, references: Iterable[VfReference], uuid: str = "") -> None:
    """ClusterError (400) for an interface naming no VF of ``node``; Conflict (409) naming the
    VM that already uses a VF (VM ``uuid`` itself aside)."""
    wanted = list(references)
    if not wanted:
        return
    functions = vfs(cluster, node) if cluster.cache.node(node) is not None else []
    matched = []
    for reference in wanted:
        function = _match(functions, reference)
        if function is None:
            if reference.interface:
                raise ClusterError(f"'{reference.device}' is not an SR-IOV VF of node '{node}'")
            continue
        matched.append(function)
    used = users(cluster, node, matched)
    for function in matched:
        user = used.get(function.phy)
        if user is not None and user != uuid:
            raise Conflict(
                f"VF '{function.phy}' of node '{node}' is already used by VM '{_vm_name(cluster, user)}'"
            )


def check_vm_xml(cluster: Cluster, node: str, xml: str, uuid: str = "") -> None:
    """:func:`check_references` for every VF a VM's XML names."""
    check_references(cluster, node, vf_references(xml), uuid)


def has_hostdev_vf(xml: str) -> bool:
    """Whether a VM's XML has a ``hostdev`` interface (a VF passed as a PCI device)."""
    return any(ref.mode == HOSTDEV and ref.interface for ref in vf_references(xml))


def hostdev_method(xml: str, method: str, before: str = "") -> str:
    """The migration method a VM gets: ``shutdown`` instead of ``none`` when its XML gains a
    hostdev VF (``before`` is its XML until now), else ``method`` unchanged."""
    gained = has_hostdev_vf(xml) and not (before and has_hostdev_vf(before))
    return MigrationMethod.SHUTDOWN if gained and method == MigrationMethod.NONE else method


def live_refusal(vm: VmRecord, force_live: bool) -> str | None:
    """Why a running VM with a hostdev VF cannot be migrated as asked (live only), or None."""
    if not has_hostdev_vf(vm.xml):
        return None
    name = vm.meta.name
    if force_live:
        return f"VM '{name}' has an SR-IOV VF as a PCI device (hostdev) and cannot be migrated live"
    if vm.meta.migration_method == MigrationMethod.LIVE:
        return (
            f"VM '{name}' has an SR-IOV VF as a PCI device (hostdev) and cannot be migrated live, "
            "but its migration method is live; set it to shutdown to move it"
        )
    return None


def move_problem(cluster: Cluster, vm: VmRecord, target: str) -> str | None:
    """Why ``vm`` cannot go to node ``target`` for want of the VFs its XML names, or None."""
    source = vm.placement.node
    functions = vfs(cluster, source) if source and cluster.cache.node(source) is not None else []
    references = [ref for ref in vf_references(vm.xml) if _match(functions, ref) is not None]
    if not references:
        return None
    there = vfs(cluster, target) if cluster.cache.node(target) is not None else []
    used = users(cluster, target, there)
    for reference in references:
        mine = _match(functions, reference)
        assert mine is not None
        theirs = _match(there, reference)
        how = "macvtap" if reference.mode == MACVTAP else "as a PCI device at " + reference.device
        if theirs is None or theirs.pf != mine.pf:
            return (
                f"Node '{target}' has no VF '{mine.phy}' of PF '{mine.pf}', which VM '{vm.meta.name}' "
                f"uses ({how})"
            )
        user = used.get(theirs.phy)
        if user is not None and user != vm.uuid:
            return (
                f"VF '{theirs.phy}' of PF '{mine.pf}' on node '{target}', which VM '{vm.meta.name}' needs, "
                f"is used by VM '{_vm_name(cluster, user)}'"
            )
    return None


def unfit_nodes(cluster: Cluster, vm: VmRecord) -> list[str]:
    """The nodes ``vm`` cannot go to for want of its VFs (for automatic target selection)."""
    if not vf_references(vm.xml):
        return []
    return [
        node.name
        for node in cluster.cache.nodes()
        if node.name != vm.placement.node and move_problem(cluster, vm, node.name)
    ]


def nodes_without(cluster: Cluster, xml: str) -> list[str]:
    """The nodes a new VM with ``xml`` cannot be defined on (its VFs missing or used there)."""
    if not vf_references(xml):
        return []
    unfit = []
    for node in cluster.cache.nodes():
        try:
            check_vm_xml(cluster, node.name, xml)
        except ClusterError:
            unfit.append(node.name)
    return unfit
