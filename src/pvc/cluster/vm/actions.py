"""Requests that change what a VM does or where it runs: state, migrate/unmigrate/move, remove.

Each request validates against the cache, then changes the VM's placement by
compare-and-set and returns once the cache shows the change. With ``wait`` it then
blocks in :func:`wait_for_vm` until the VM's node reports the result through
``running_on`` and ``state``, for at most ``timeout`` seconds; then :class:`NotYetDone`
says the change goes on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pvc.cluster.errors import ClusterError, NotYetDone, WaitTimeout
from pvc.cluster.session import Cluster
from pvc.cluster.sriov import vms as sriov_vms
from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.vm.placement import accepts_vms, choose_node, effective_selector
from pvc.cluster.vm.queries import resolve
from pvc.domain_xml.parse import rbd_volumes
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.states import VM_MIGRATING, VM_RUNNING, DaemonState, Selector, VMState
from pvc.state.vm_snapshots import read_snapshots
from pvc.state.vms import VmPlacement, VmRecord, delete_vm, update_placement
from pvc.storage import disk_locks
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage.errors import StorageNotFound

if TYPE_CHECKING:
    from pvc.cluster.storage.actions import StorageOps

#: How long ``wait`` requests wait for a node to act before giving up, in seconds.
DEFAULT_WAIT_TIMEOUT = 300.0
#: How long removing a running VM waits for its node to stop it.
REMOVE_STOP_TIMEOUT = 60.0
#: How long removing a VM's disks waits for the cache to forget the VM.
REMOVE_SETTLE_TIMEOUT = 5.0


def _is_running(placement: VmPlacement) -> bool:
    return placement.state in VM_RUNNING


def change_placement(
    cluster: Cluster, uuid: str, change: Callable[[VmPlacement], VmPlacement | None]
) -> VmPlacement | None:
    """Change a VM's placement by compare-and-set and wait until the cache shows it.

    Returns the placement written (None when ``change`` declined).
    """
    placement, commit = update_placement(cluster.store, uuid, change)
    cluster.settle(commit)
    return placement


def check_changeable(name: str, placement: VmPlacement, force: bool) -> None:
    """ClusterError if a client may not change the state of a VM in ``placement``: one being
    handed over to another cluster, a mirror (unless forced: it is then taken over here) or a
    VM being imported."""
    if placement.held_by:
        raise ClusterError(
            f"VM '{name}' is being handed over to another cluster by task {placement.held_by}; "
            "its state changes when that task ends"
        )
    if placement.state == VMState.MIRROR and not force:
        raise ClusterError(
            f"VM '{name}' is a mirror of a VM on another cluster: "
            "promote it there (pvc vm mirror promote), or give force to take it over here "
            "(the other cluster's copy is not stopped)"
        )
    if placement.state == VMState.IMPORT:
        raise ClusterError(f"VM '{name}' is being imported; its state changes when the import ends")


def request_state(
    cluster: Cluster,
    vm: str,
    state: str,
    *,
    force: bool = False,
    wait: bool = False,
    timeout: float = DEFAULT_WAIT_TIMEOUT,
) -> str:
    """Ask for a VM to start, restart, shut down, stop (power off) or be disabled.

    A mirror changes state only with ``force``: the VM is taken over here, whatever runs on
    the cluster it mirrors. With ``wait``, return once its node has done it (NotYetDone after
    ``timeout`` seconds).
    """
    record = resolve(cluster, vm)
    cache = cluster.cache
    name, current = record.meta.name, record.placement
    check_changeable(name, current, force)
    if state in (VMState.RESTART, VMState.SHUTDOWN) and current.state not in VM_RUNNING:
        raise ClusterError(f"VM '{name}' is not running (state {current.state})")
    if state == VMState.START and current.state in VM_RUNNING and current.running_on:
        return f"VM '{name}' is already running"
    owner = cache.node(current.node)
    if state in (VMState.START, VMState.RESTART) and (owner is None or owner.daemon_state != DaemonState.RUN):
        raise ClusterError(f"VM '{name}' belongs to node '{current.node}', whose daemon is not running")

    def change(placement: VmPlacement) -> VmPlacement:
        check_changeable(name, placement, force)  # again, atomically: it may have become one
        if state == VMState.START:
            return replace(placement, state=VMState.START, failed_reason="", restarts=0, hard=False)
        return replace(placement, state=state, hard=force and state == VMState.DISABLE)

    change_placement(cluster, record.uuid, change)
    verbs = {
        VMState.START: "Starting",
        VMState.RESTART: "Restarting",
        VMState.SHUTDOWN: "Shutting down",
        VMState.STOP: "Forcibly stopping",
        VMState.DISABLE: "Disabling",
    }
    message = f"{verbs[VMState(state)]} VM '{name}'"
    if not wait:
        return message
    return _waited(cluster, record.uuid, message, state_done(state), timeout, f"VM '{name}' to {state}")


def request_node(
    cluster: Cluster,
    vm: str,
    action: str,
    *,
    node: str | None = None,
    force: bool = False,
    force_live: bool = False,
    wait: bool = False,
    timeout: float = DEFAULT_WAIT_TIMEOUT,
    default_selector: str = Selector.MEM,
) -> str:
    """Migrate (temporarily), unmigrate (back) or move (permanently) a VM; returns the reply.

    With ``wait``, return once the VM has arrived (NotYetDone after ``timeout`` seconds).
    """
    record = resolve(cluster, vm)
    cache = cluster.cache
    name, current = record.meta.name, record.placement
    if current.state in (VMState.MIRROR, VMState.IMPORT):
        what = "a mirror" if current.state == VMState.MIRROR else "being imported"
        raise ClusterError(f"VM '{name}' is {what}; it cannot be migrated")
    if action == "unmigrate":
        if not current.last_node:
            raise ClusterError(f"VM '{name}' has not been migrated")
        target = current.last_node
    elif node:
        target = node
    else:
        target = choose_node(
            cache.nodes(),
            cache.vms(),
            selector=effective_selector(record.meta.node_selector, default_selector),
            node_limit=record.meta.node_limit,
            exclude=[current.node, *sriov_vms.unfit_nodes(cluster, record)],
        )
        if target is None:
            raise ClusterError(f"No other node can take VM '{name}' now")
    _check_target(cache, record, target, check_limit=action != "unmigrate")
    problem = sriov_vms.move_problem(cluster, record, target)
    if problem is None and _is_running(current):
        problem = sriov_vms.live_refusal(record, force_live)
    if problem is not None:
        raise ClusterError(problem)
    if action == "migrate" and current.last_node and not force:
        raise ClusterError(
            f"VM '{name}' has already been migrated from node '{current.last_node}'; "
            "give force to migrate it again (it still returns to that node on unmigrate)"
        )

    def change(placement: VmPlacement) -> VmPlacement:
        if placement.node == target:
            raise ClusterError(f"VM '{name}' is already on node '{target}'")
        # A migration remembers where the VM came from (its first origin, when forced again).
        last = (placement.last_node or placement.node) if action == "migrate" else ""
        state = placement.state
        if _is_running(placement):
            state = VMState.MIGRATE_LIVE if force_live else VMState.MIGRATE
        return replace(placement, node=target, last_node=last, state=state)

    change_placement(cluster, record.uuid, change)
    verb = {"migrate": "Migrating", "unmigrate": "Unmigrating", "move": "Moving"}[action]
    message = f"{verb} VM '{name}' to node '{target}'"
    if not wait:
        return message
    what = f"VM '{name}' to arrive on node '{target}'"
    return _waited(cluster, record.uuid, message, node_done(target), timeout, what)


def _check_target(cache: ClusterCache, record: VmRecord, target: str, *, check_limit: bool) -> None:
    name = record.meta.name
    node = cache.node(target)
    if node is None:
        raise ClusterError(f"Node '{target}' does not exist")
    if record.placement.node == target:
        raise ClusterError(f"VM '{name}' is already on node '{target}'")
    if check_limit and record.meta.node_limit and target not in record.meta.node_limit:
        raise ClusterError(f"Node '{target}' is not in VM '{name}''s node limit")
    if not accepts_vms(node):
        raise ClusterError(
            f"Node '{target}' cannot take VMs now (daemon {node.daemon_state}, domain {node.domain_state})"
        )


def remove(
    cluster: Cluster,
    vm: str,
    *,
    delete_disks: bool = False,
    storage: StorageOps | None = None,
) -> str:
    """Remove a VM from the cluster, stopping it first if it runs.

    With ``delete_disks`` its RBD volumes are deleted through ``storage`` once the VM is
    gone (refused up front when no storage is configured); a volume that cannot be
    deleted is named in the returned message, with the reason. Other disks are kept.
    """
    record = resolve(cluster, vm)
    name = record.meta.name
    if record.placement.held_by:
        raise ClusterError(
            f"VM '{name}' is being handed over to another cluster by task {record.placement.held_by}; "
            "remove it when that task ends"
        )
    disks: list[tuple[str, str]] = []
    owned_snapshots: list[str] = []  # the VM's own snapshots go with its volumes
    if delete_disks:
        disks = rbd_volumes(record.xml)
        owned_snapshots = [
            spec
            for snap in read_snapshots(cluster.cache.data, cluster.cache.children, record.uuid)
            for spec in snap.rbd_snapshots
        ]
        if disks and (storage is None or not storage.access.configured):
            raise ClusterError(
                f"VM '{name}' has RBD volumes ({', '.join(f'{p}/{v}' for p, v in disks)}); "
                "no Ceph storage is configured here to delete them; remove the VM without delete_disks"
            )
    if record.placement.running_on or _is_running(record.placement):
        change_placement(cluster, record.uuid, lambda p: replace(p, state=VMState.STOP))
        wait_for_vm(
            cluster,
            record.uuid,
            lambda r: not r.placement.running_on,
            timeout=REMOVE_STOP_TIMEOUT,
            what=f"node '{record.placement.running_on or record.placement.node}' to stop VM '{name}'",
        )
    # The volume checks look for VMs using a volume in the cache: it must forget this one.
    cluster.settle(delete_vm(cluster.store, record.uuid, name), REMOVE_SETTLE_TIMEOUT)
    message = f"Removed VM '{name}' from the cluster"
    if not disks:
        return message
    assert storage is not None
    deleted, failed = _delete_volumes(storage, disks, owned_snapshots)
    if deleted:
        message += f" and deleted its RBD volumes {', '.join(deleted)}"
    if failed:
        message += f"; could not delete {'; '.join(failed)}"
    return message


def _delete_volumes(
    storage: StorageOps, disks: list[tuple[str, str]], owned_snapshots: list[str]
) -> tuple[list[str], list[str]]:
    """Delete each volume after clearing its stale locks and removing the RBD snapshots of
    the VM's own snapshots (``pool/volume@name``): (deleted, "pool/volume: reason" failures).

    A stale lock must go first: Ceph's image removal waits forever on an image that
    still carries an advisory lock of a dead client. Other snapshots keep their volume.
    """
    deleted: list[str] = []
    failed: list[str] = []
    for pool, volume in disks:
        try:
            with mapped_errors(storage.access):
                client = storage.access.client()
                disk_locks.clear_stale(client, pool, volume)
                for spec in owned_snapshots:
                    if spec.startswith(f"{pool}/{volume}@"):
                        with contextlib.suppress(StorageNotFound):
                            rbd_snapshots.remove(client, pool, volume, spec.split("@", 1)[1])
            storage.remove_volume(pool, volume)
        except ClusterError as error:
            failed.append(f"{pool}/{volume}: {error}")
        else:
            deleted.append(f"{pool}/{volume}")
    return deleted, failed


# -- waiting -------------------------------------------------------------------------------


def _waited(
    cluster: Cluster, uuid: str, message: str, done: Callable[[VmRecord], bool], timeout: float, what: str
) -> str:
    """``message`` + ": done" once ``done`` holds; NotYetDone (202) when the wait limit passes first."""
    try:
        wait_for_vm(cluster, uuid, done, timeout=timeout, what=what)
    except WaitTimeout:
        raise NotYetDone(message, timeout, what) from None
    return message + ": done"


def wait_for_vm(
    cluster: Cluster,
    uuid: str,
    done: Callable[[VmRecord], bool],
    *,
    timeout: float = DEFAULT_WAIT_TIMEOUT,
    what: str = "the VM's node",
) -> VmRecord:
    """Wait on the cache until ``done(record)``; fails when the VM fails or vanishes, WaitTimeout
    when time runs out. The check runs only when the cache changes (see ClusterCache.wait_until)."""

    def check() -> VmRecord | None:
        record = cluster.cache.vm(uuid)
        if record is None:
            raise ClusterError(f"VM {uuid} was removed while waiting")
        if done(record):
            return record
        if record.placement.state == VMState.FAIL:
            raise ClusterError(f"VM '{record.meta.name}' failed: {record.placement.failed_reason}")
        return None

    record = cluster.cache.wait_until(check, timeout, under=paths.domain(uuid))
    if record is None:
        raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
    return record


def state_done(state: str) -> Callable[[VmRecord], bool]:
    """When a requested state change has been carried out by the VM's node."""
    if state in (VMState.START, VMState.RESTART):
        return lambda r: r.placement.state == VMState.START and r.placement.running_on == r.placement.node
    if state == VMState.SHUTDOWN:
        return lambda r: r.placement.state != VMState.SHUTDOWN and not r.placement.running_on
    return lambda r: not r.placement.running_on


def node_done(target: str) -> Callable[[VmRecord], bool]:
    """When a VM has arrived on ``target`` (or, if it is not running, been reassigned)."""

    def done(record: VmRecord) -> bool:
        placement = record.placement
        if placement.node != target:
            return False
        if placement.state in VM_MIGRATING:
            return False
        return placement.state not in VM_RUNNING or placement.running_on == target

    return done
