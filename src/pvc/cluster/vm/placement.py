"""Choosing the node a VM goes to.

A node can take VMs when its daemon runs and its domain state is ``ready``. Among
those allowed by the VM's ``node_limit``, the selector picks one: ``mem`` the most
unallocated memory, ``memprov`` the most memory not provisioned to VMs, ``vcpus`` the
fewest vCPUs given to running VMs, ``load`` the lowest load average, ``vms`` the fewest
running VMs. Allocation comes from the VM records (exact and immediate, unlike the
nodes' keepalives). Ties go to the node whose name sorts first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pvc.state.records import NodeRecord
from pvc.state.states import VM_RUNNING, DaemonState, DomainState, Selector
from pvc.state.vms import VmRecord

#: The selector used when neither the VM nor the cluster names one.
DEFAULT_SELECTOR = Selector.MEM


@dataclass
class NodeLoad:
    """What the VMs assigned to a node take from it."""

    memory_total: int = 0
    memory_allocated: int = 0
    memory_provisioned: int = 0
    vcpus_allocated: int = 0
    running_vms: int = 0
    load: float = 0.0


def loads(nodes: Iterable[NodeRecord], vms: Iterable[VmRecord]) -> dict[str, NodeLoad]:
    """Per-node totals from the nodes' keepalives and the VM records."""
    result: dict[str, NodeLoad] = {}
    for node in nodes:
        keepalive = node.keepalive
        result[node.name] = NodeLoad(
            memory_total=keepalive.memory_mib.total if keepalive else 0,
            load=keepalive.load if keepalive else 0.0,
        )
    for vm in vms:
        load = result.get(vm.placement.node)
        if load is None:
            continue
        load.memory_provisioned += vm.meta.memory_mib
        if vm.placement.state in VM_RUNNING:
            load.memory_allocated += vm.meta.memory_mib
            load.vcpus_allocated += vm.meta.vcpus
            load.running_vms += 1
    return result


def accepts_vms(node: NodeRecord) -> bool:
    """Whether a node can take VMs now."""
    return node.daemon_state == DaemonState.RUN and node.domain_state == DomainState.READY


def _score(selector: str, load: NodeLoad) -> float:
    """Lower is better."""
    if selector == Selector.MEMPROV:
        return -(load.memory_total - load.memory_provisioned)
    if selector == Selector.VCPUS:
        return load.vcpus_allocated
    if selector == Selector.LOAD:
        return load.load
    if selector == Selector.VMS:
        return load.running_vms
    return -(load.memory_total - load.memory_allocated)


def effective_selector(vm_selector: str, cluster_default: str = DEFAULT_SELECTOR) -> str:
    """The VM's own selector, or the cluster default when it says ``none``."""
    if vm_selector and vm_selector != Selector.NONE:
        return vm_selector
    return cluster_default if cluster_default != Selector.NONE else DEFAULT_SELECTOR


def choose_node(
    nodes: Iterable[NodeRecord],
    vms: Iterable[VmRecord],
    *,
    selector: str,
    node_limit: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> str | None:
    """The best node for a VM, or None when no node may take it."""
    nodes = list(nodes)
    allowed = set(node_limit)
    excluded = set(exclude)
    candidates = [
        node
        for node in nodes
        if accepts_vms(node) and node.name not in excluded and (not allowed or node.name in allowed)
    ]
    if not candidates:
        return None
    totals = loads(nodes, vms)
    best = min(candidates, key=lambda node: (_score(selector, totals[node.name]), node.name))
    return best.name


def overprovisioned(nodes: Iterable[NodeRecord], vms: Iterable[VmRecord]) -> tuple[int, int] | None:
    """``(provisioned, capacity)`` in MiB when VMs need more memory than N-1 nodes have.

    Capacity is the memory of every running node but the largest, so that the cluster
    can lose any one node and still hold every VM. None when it fits.
    """
    totals = [
        node.keepalive.memory_mib.total
        for node in nodes
        if node.daemon_state == DaemonState.RUN and node.keepalive is not None
    ]
    if len(totals) < 2:
        return None
    capacity = sum(totals) - max(totals)
    provisioned = sum(vm.meta.memory_mib for vm in vms)
    return (provisioned, capacity) if provisioned > capacity else None
