"""Flush and unflush of this node, one VM at a time.

``flush``: every VM assigned here (except disabled ones) is reassigned to the node its
selector picks, remembering this node as its ``last_node``; running VMs migrate, and
the next VM goes only once the previous one has arrived. With nothing left here the
node becomes ``flushed``. ``unflush``: VMs whose ``last_node`` is this node come back
the same way, then the node is ``ready``. A VM that no other node can take is shut
down (it stays assigned here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pvc.cluster.session import Cluster
from pvc.cluster.vm.actions import change_placement
from pvc.cluster.vm.placement import choose_node, effective_selector
from pvc.state import nodes
from pvc.state.states import VM_RUNNING, DomainState, VMState
from pvc.state.vms import VmPlacement, VmRecord


class FlushDriver:
    """Moves VMs off this node (flush) and back (unflush), one step per call."""

    def __init__(self, cluster: Cluster, node: str, default_selector: str) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.cache = cluster.cache
        self.node = node
        self.default_selector = default_selector

    def step(self, active: dict[str, str], busy: Callable[[str], bool]) -> str | None:
        """Advance a flush or unflush by at most one VM; returns what it did, if anything."""
        state, _ = self.cache.domain_state(self.node)
        if state not in (DomainState.FLUSH, DomainState.UNFLUSH):
            return None
        vms = self.cache.vms()
        if any(self._in_flight(vm, active, busy) for vm in vms):
            return None
        if state == DomainState.FLUSH:
            return self._flush_one(vms, active) or self._finish(state, DomainState.FLUSHED, vms, active)
        return self._unflush_one(vms) or self._finish(state, DomainState.READY, vms, active)

    def _in_flight(self, vm: VmRecord, active: dict[str, str], busy: Callable[[str], bool]) -> bool:
        """A VM still on its way to or from this node (or being acted on here)."""
        placement = vm.placement
        if placement.node != self.node and vm.uuid in active:
            return True  # leaving: still runs here
        moved = placement.node == self.node or placement.last_node == self.node
        if moved and placement.state in VM_RUNNING and placement.running_on != placement.node:
            return True  # not yet running where it belongs (migrating, or stopped to be started)
        return busy(vm.uuid) and placement.node == self.node

    def _flush_one(self, vms: list[VmRecord], active: dict[str, str]) -> str | None:
        nodes = self.cache.nodes()
        for vm in vms:
            placement = vm.placement
            if placement.node != self.node or placement.state == VMState.DISABLE:
                continue
            target = choose_node(
                nodes,
                vms,
                selector=effective_selector(vm.meta.node_selector, self.default_selector),
                node_limit=vm.meta.node_limit,
                exclude=[self.node],
            )
            if target is None:
                if placement.state in VM_RUNNING:
                    self._update(vm.uuid, _shutdown)
                    return f"flush: no other node can take VM {vm.meta.name}; shutting it down"
                continue

            def move(p: VmPlacement, target: str = target) -> VmPlacement | None:
                if p.node != self.node:
                    return None
                state = VMState.MIGRATE if p.state in VM_RUNNING else p.state
                return replace(p, node=target, last_node=self.node, state=state)

            if self._update(vm.uuid, move) is None:
                return None
            return f"flush: VM {vm.meta.name} -> node {target}"
        return None

    def _unflush_one(self, vms: list[VmRecord]) -> str | None:
        for vm in vms:
            if vm.placement.last_node != self.node:
                continue

            def back(p: VmPlacement) -> VmPlacement | None:
                if p.last_node != self.node:
                    return None
                state = VMState.MIGRATE if p.state in VM_RUNNING else p.state
                return replace(p, node=self.node, last_node="", state=state)

            if self._update(vm.uuid, back) is None:
                return None
            return f"unflush: VM {vm.meta.name} <- node {vm.placement.node}"
        return None

    def _finish(
        self, state: str, final: DomainState, vms: list[VmRecord], active: dict[str, str]
    ) -> str | None:
        if final == DomainState.FLUSHED:
            remaining = [
                vm.meta.name for vm in vms if vm.uuid in active and vm.placement.state != VMState.DISABLE
            ]
            if remaining:
                return None  # still shutting down those that could not move
        _, version = self.cache.domain_state(self.node)
        if nodes.finish_domain_state(self.store, self.node, version, final) is None:
            return None  # changed meanwhile (e.g. ready asked for during a flush)
        return f"domain state {state} -> {final.value}"

    def _update(self, uuid: str, change: Callable[[VmPlacement], VmPlacement | None]) -> VmPlacement | None:
        """Change a VM's placement; the next step reads it, so this waits for the cache."""
        return change_placement(self.cluster, uuid, change)


def _shutdown(placement: VmPlacement) -> VmPlacement:
    return replace(placement, state=VMState.SHUTDOWN)
