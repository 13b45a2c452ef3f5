"""Flush and unflush of this node, one VM at a time.

``flush``: every VM assigned here (except disabled ones) is reassigned to the node its
selector picks, remembering this node as its ``last_node``; running VMs migrate, and
the next VM goes only once the previous one has arrived. With nothing left here the
node becomes ``flushed``. ``unflush``: VMs whose ``last_node`` is this node come back
the same way, then the node is ``ready``.

A running VM that cannot leave (its node limit or the selector leaves no other ready node,
no other node has the SR-IOV VFs it uses free, or its move failed, e.g. a live-only
migration) is shut down where it is with ``node_autostart`` set. ``unflush`` starts such
VMs here again before bringing the others back, clearing the flag: like in PVC,
``node_autostart`` is used once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pvc.cluster.session import Cluster
from pvc.cluster.sriov.vms import unfit_nodes
from pvc.cluster.vm.actions import change_placement
from pvc.cluster.vm.placement import choose_node, effective_selector
from pvc.state import nodes
from pvc.state.states import VM_RUNNING, DomainState, VMState
from pvc.state.vms import VmMeta, VmPlacement, VmRecord, update_meta


class FlushDriver:
    """Moves VMs off this node (flush) and back (unflush), one step per call."""

    def __init__(self, cluster: Cluster, node: str, default_selector: str) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.cache = cluster.cache
        self.node = node
        self.default_selector = default_selector
        #: VMs this flush has tried to move: one found here again could not leave.
        self._tried: set[str] = set()

    def step(self, active: dict[str, str], busy: Callable[[str], bool]) -> str | None:
        """Advance a flush or unflush by at most one VM; returns what it did, if anything."""
        state, _ = self.cache.domain_state(self.node)
        if state != DomainState.FLUSH:
            self._tried.clear()
        if state not in (DomainState.FLUSH, DomainState.UNFLUSH):
            return None
        vms = self.cache.vms()
        if any(self._in_flight(vm, active, busy) for vm in vms):
            return None
        if state == DomainState.FLUSH:
            return self._flush_one(vms, active) or self._finish(state, DomainState.FLUSHED, vms, active)
        if any(self._autostart_pending(vm) for vm in vms):
            return None  # let the shutdowns of a flush it interrupts finish first
        return (
            self._autostart_one(vms)
            or self._unflush_one(vms)
            or self._finish(state, DomainState.READY, vms, active)
        )

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
                exclude=[self.node, *unfit_nodes(self.cluster, vm)],
            )
            if target is None or vm.uuid in self._tried:
                if placement.state not in VM_RUNNING:
                    continue
                why = "no other node can take it" if target is None else "it could not move"
                return self._stay_down(vm, why)

            def move(p: VmPlacement, target: str = target) -> VmPlacement | None:
                if p.node != self.node:
                    return None
                state = VMState.MIGRATE if p.state in VM_RUNNING else p.state
                return replace(p, node=target, last_node=self.node, state=state)

            if self._update(vm.uuid, move) is None:
                return None
            self._tried.add(vm.uuid)
            return f"flush: VM {vm.meta.name} -> node {target}"
        return None

    def _stay_down(self, vm: VmRecord, why: str) -> str | None:
        """Shut down a VM that cannot leave, marked to start here again at ``ready``."""
        self.cluster.settle(update_meta(self.store, vm.uuid, _with_autostart(True))[1])
        if self._update(vm.uuid, _shutdown) is None:
            return None
        return f"flush: {why}: shutting down VM {vm.meta.name}; it starts here again when the node is ready"

    def _autostart_pending(self, vm: VmRecord) -> bool:
        """A VM marked to start here whose shutdown has not finished yet."""
        placement = vm.placement
        return placement.node == self.node and vm.meta.node_autostart and placement.state == VMState.SHUTDOWN

    def _autostart_one(self, vms: list[VmRecord]) -> str | None:
        """Start one stopped VM of this node marked ``node_autostart``, clearing the mark."""
        for vm in vms:
            placement = vm.placement
            if placement.node != self.node or not vm.meta.node_autostart or placement.state != VMState.STOP:
                continue
            self.cluster.settle(update_meta(self.store, vm.uuid, _with_autostart(False))[1])

            def start(p: VmPlacement) -> VmPlacement | None:
                if p.node != self.node or p.state != VMState.STOP:
                    return None
                return replace(p, state=VMState.START)

            if self._update(vm.uuid, start) is None:
                return None
            return f"unflush: starting VM {vm.meta.name} (autostart)"
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


def _shutdown(placement: VmPlacement) -> VmPlacement | None:
    if placement.state not in VM_RUNNING:
        return None
    return replace(placement, state=VMState.SHUTDOWN)


def _with_autostart(on: bool) -> Callable[[VmMeta], VmMeta]:
    return lambda meta: replace(meta, node_autostart=on)
