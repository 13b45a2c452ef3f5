"""Recovery of a fenced node's VMs: where each one goes, and moving it there.

Run by the node that fenced it, once the dead node is known to be off (or, with
``failed_fence: migrate``, once it is known to have stopped its VMs itself). Every VM
that should be running on the dead node is started elsewhere: the node its selector
picks among those its ``node_limit`` allows, that run, are ``ready`` and have the SR-IOV
functions it needs free. The dead node becomes its ``last_node``, so that ``pvc node
ready`` brings it back once the node is in service again. A VM that fits nowhere is set
to ``stop`` (it is not running anyway) and reported. A VM that was being migrated *to*
the dead node from a live one stays where it runs. A VM that was being migrated *from*
the dead node already belongs to its target, which starts it (or finds it arrived).

Before a VM moves, every lock on its RBD disks is broken: the QEMU that held them is
gone with its node, but the OSDs keep its watch for about 30 s, which would hold the
start back that long. Breaking a lock blocklists its holder, so even a node that was
wrongly believed off could no longer write to the disks. For a VM migrating away from
the dead node only the locks held from the dead node's storage address are broken: its
target may already run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace

from pvc.cluster.session import Cluster
from pvc.cluster.sriov.vms import unfit_nodes
from pvc.cluster.vm.actions import change_placement
from pvc.cluster.vm.placement import choose_node, effective_selector
from pvc.state.records import NodeRecord
from pvc.state.states import VM_RUNNING, VMState
from pvc.state.vms import VmPlacement, VmRecord


@dataclass(frozen=True)
class Move:
    """What recovery does with one VM: ``target`` None means it fits nowhere (stop it)."""

    vm: VmRecord
    target: str | None
    #: The VM still runs on a live node (a migration to the dead node that never finished).
    stays: bool = False


def to_recover(vms: Iterable[VmRecord], dead: str) -> list[VmRecord]:
    """The VMs that should run on node ``dead``: assigned to it, in a running state."""
    return [vm for vm in vms if vm.placement.node == dead and vm.placement.state in VM_RUNNING]


def migrating_away(vms: Iterable[VmRecord], dead: str) -> list[VmRecord]:
    """VMs whose migration from node ``dead`` to a live one had not finished."""
    return [
        vm
        for vm in vms
        if vm.placement.running_on == dead
        and vm.placement.node not in ("", dead)
        and vm.placement.state in VM_RUNNING
    ]


def plan(
    nodes: list[NodeRecord],
    vms: list[VmRecord],
    dead: str,
    *,
    default_selector: str,
    unfit: Callable[[VmRecord], Iterable[str]] = lambda vm: (),
) -> list[Move]:
    """Where each of ``dead``'s VMs goes, in name order; each choice counts the VMs already
    placed by the plan (so that several VMs spread as the selector would spread them)."""
    alive = {node.name for node in nodes if node.present and node.name != dead}
    placed = list(vms)
    moves = []
    for vm in sorted(to_recover(vms, dead), key=lambda vm: vm.meta.name):
        running_on = vm.placement.running_on
        if running_on not in ("", dead) and running_on in alive:
            moves.append(Move(vm, running_on, stays=True))
            continue
        target = choose_node(
            nodes,
            placed,
            selector=effective_selector(vm.meta.node_selector, default_selector),
            node_limit=vm.meta.node_limit,
            exclude=[dead, *unfit(vm)],
        )
        moves.append(Move(vm, target))
        if target is not None:
            moved = replace(vm.placement, node=target, state=VMState.START)
            placed = [replace(other, placement=moved) if other.uuid == vm.uuid else other for other in placed]
    return moves


@dataclass
class Outcome:
    """What a recovery did: VM names moved (with their target), stopped, and problems."""

    recovered: list[str]
    stranded: list[str]
    problems: list[str]


#: Lock breaks run at once, up to this many (each waits on Ceph for its disks).
PARALLEL_BREAKS = 16


def recover(
    cluster: Cluster,
    dead: str,
    *,
    default_selector: str,
    break_locks: Callable[[VmRecord, str | None], str | None],
) -> Outcome:
    """Move every VM of node ``dead`` per :func:`plan`; ``break_locks(vm, held_from)`` clears
    its disks' locks (all, or those held from an address) and returns a problem (the VM is
    then left alone) or None. The locks of all VMs are broken at once, and each VM moves
    as soon as its own are clear: until the dead node's OSDs are known to be down, each
    break may wait on Ceph."""
    cache = cluster.cache
    outcome = Outcome([], [], [])
    dead_node = cache.node(dead)
    dead_address = dead_node.static.storage_address if dead_node is not None else ""
    moves = plan(
        cache.nodes(),
        cache.vms(),
        dead,
        default_selector=default_selector,
        unfit=lambda vm: unfit_nodes(cluster, vm),
    )
    breaks: list[tuple[VmRecord, str | None, Move | None]] = [
        (vm, dead_address, None) for vm in migrating_away(cache.vms(), dead) if dead_address
    ]  # without the dead node's address (an old registration) the target waits for staleness
    for move in moves:
        if move.target is None:
            if change_placement(cluster, move.vm.uuid, _stop_on(dead)) is not None:
                outcome.stranded.append(move.vm.meta.name)
        elif move.stays:
            _move(cluster, dead, move, outcome)
        else:
            breaks.append((move.vm, None, move))
    if not breaks:
        return outcome
    workers = min(PARALLEL_BREAKS, len(breaks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="unlock") as pool:
        pending = {pool.submit(break_locks, vm, held_from): (vm, move) for vm, held_from, move in breaks}
        for done in as_completed(pending):
            vm, move = pending[done]
            problem = done.result()
            if problem is not None:
                outcome.problems.append(f"VM {vm.meta.name}: {problem}")
            elif move is not None:
                _move(cluster, dead, move, outcome)
    return outcome


def _move(cluster: Cluster, dead: str, move: Move, outcome: Outcome) -> None:
    assert move.target is not None
    if change_placement(cluster, move.vm.uuid, _move_from(dead, move.target, move.stays)) is not None:
        outcome.recovered.append(f"{move.vm.meta.name} -> {move.target}")


def _move_from(dead: str, target: str, stays: bool) -> Callable[[VmPlacement], VmPlacement | None]:
    def change(placement: VmPlacement) -> VmPlacement | None:
        if placement.node != dead or placement.state not in VM_RUNNING:
            return None  # moved or stopped meanwhile
        last_node = placement.last_node if stays else dead
        return replace(placement, node=target, last_node=last_node, state=VMState.START)

    return change


def _stop_on(dead: str) -> Callable[[VmPlacement], VmPlacement | None]:
    def change(placement: VmPlacement) -> VmPlacement | None:
        if placement.node != dead or placement.state not in VM_RUNNING:
            return None
        return replace(placement, state=VMState.STOP)

    return change
