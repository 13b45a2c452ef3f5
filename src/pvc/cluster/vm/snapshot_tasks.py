"""Creating, removing and rolling back VM snapshots, as tasks.

The API checks what its cache can answer (:func:`submit_create`, :func:`submit_remove`,
:func:`submit_rollback`) and queues a task. A creation runs on the node running the VM, so
that it can hold the guest still while every volume gets its RBD snapshot: with the QEMU
guest agent the guest's filesystems are flushed and frozen (``quiesced``), without one the
VM is paused for those milliseconds (``crash-consistent``: every disk at the same instant,
as after a power cut); a VM that is not running is snapshotted as it is (``stopped``). A
stopped VM's snapshot, a removal and a rollback run on the primary coordinator.

The snapshot's name is claimed in ZooKeeper before any RBD snapshot is taken, and a failed
creation removes what it made; one whose node died is cleaned up by the node that finds it
lost (:func:`sweep_lost_creation`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from lxml import etree

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict, NotFoundError
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess, mapped_errors
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeServices, NodeTaskContext, need_storage, node_xml_policy
from pvc.cluster.vm.define import parse_xml
from pvc.cluster.vm.queries import resolve, task_domain
from pvc.cluster.vm.snapshots import ROLLBACK_STATES, check_name, default_name, rbd_disks
from pvc.cluster.vm.xml_policy import devices_of
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import has_guest_agent, parse
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.errors import HypervisorError
from pvc.state import paths
from pvc.state.errors import ConflictError, StateError
from pvc.state.states import VM_MIGRATING
from pvc.state.vm_snapshots import Consistency, VmSnapshot, claim, complete, forget, read_snapshot
from pvc.state.vms import VmRecord, read_vm, replace_definition
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage.errors import StorageError, StorageNotFound
from pvc.tasks import InvalidTaskError, TaskError, task_type
from pvc.tasks.records import FINISHED_STATES

log = logging.getLogger(__name__)

CREATE_TASK = "vm.create_snapshot"
REMOVE_TASK = "vm.remove_snapshot"
ROLLBACK_TASK = "vm.rollback_snapshot"


# -- the API side --------------------------------------------------------------------------


def _snapshot(cluster: Cluster, record: VmRecord, name: str) -> VmSnapshot:
    found = read_snapshot(cluster.cache.data, record.uuid, name)
    if found is None:
        raise NotFoundError(f"VM '{record.meta.name}' has no snapshot '{name}'")
    return found


def _primary(cluster: Cluster, what: str) -> str:
    node = running_primary(cluster)
    if node is None:
        raise Conflict(f"No primary coordinator is running to {what}")
    return node


def submit_create(cluster: Cluster, vm: str, name: str | None = None) -> tasks.TaskRecord:
    """Queue ``vm.create_snapshot`` of VM ``vm`` (name: :func:`default_name` if None).

    ClusterError (400) for a bad or used name, a VM without RBD disks or one that is
    migrating; NotFoundError (404) for an unknown VM; Conflict (409) without a node to run it.
    """
    record = resolve(cluster, vm)
    name = check_name(default_name() if name is None else name)
    if read_snapshot(cluster.cache.data, record.uuid, name) is not None:
        raise ClusterError(f"VM '{record.meta.name}' already has a snapshot named '{name}'")
    rbd_disks(record)
    placement = record.placement
    if placement.state in VM_MIGRATING:
        raise ClusterError(f"VM '{record.meta.name}' is migrating; snapshot it once it has arrived")
    node = placement.running_on or _primary(cluster, "take the snapshot")
    return task_actions.submit(cluster, create_snapshot, node, {"domain": record.uuid, "snapshot_name": name})


def _still_making(source: Any, snapshot: VmSnapshot) -> str:
    """The id of the task still making an unfinished snapshot ("" if it is finished, or
    ended without finishing it: then the record is a leftover that may be removed)."""
    if snapshot.complete or not snapshot.task:
        return ""
    maker = tasks.get(source, snapshot.task)
    return snapshot.task if maker is not None and maker.state not in FINISHED_STATES else ""


def submit_remove(cluster: Cluster, vm: str, name: str) -> tasks.TaskRecord:
    """Queue ``vm.remove_snapshot`` on the primary; NotFoundError (404) for an unknown VM
    or snapshot, Conflict (409) without a primary."""
    record = resolve(cluster, vm)
    maker = _still_making(cluster.cache, _snapshot(cluster, record, check_name(name)))
    if maker:
        raise ClusterError(f"Snapshot '{name}' of VM '{record.meta.name}' is being made by task {maker}")
    node = _primary(cluster, "remove the snapshot")
    return task_actions.submit(cluster, remove_snapshot, node, {"domain": record.uuid, "snapshot_name": name})


def submit_rollback(cluster: Cluster, vm: str, name: str) -> tasks.TaskRecord:
    """Queue ``vm.rollback_snapshot`` on the primary.

    ClusterError (400) unless the VM is stopped, disabled or a mirror and runs nowhere, or
    when the snapshot is still being made; NotFoundError (404) for an unknown VM or snapshot.
    """
    record = resolve(cluster, vm)
    snapshot = _snapshot(cluster, record, check_name(name))
    if not snapshot.complete:
        raise ClusterError(f"Snapshot '{name}' of VM '{record.meta.name}' is not complete")
    placement = record.placement
    if placement.held_by:
        raise ClusterError(f"VM '{record.meta.name}' is being handed over to another cluster; no rollback")
    if placement.state not in ROLLBACK_STATES or placement.running_on:
        where = f", running on {placement.running_on}" if placement.running_on else ""
        raise ClusterError(
            f"VM '{record.meta.name}' is {placement.state}{where}: stop or disable it before a rollback"
        )
    node = _primary(cluster, "roll the VM back")
    return task_actions.submit(
        cluster, rollback_snapshot, node, {"domain": record.uuid, "snapshot_name": name}
    )


# -- the tasks -----------------------------------------------------------------------------


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    domain = task_domain(args)
    return {"domain": domain, "snapshot_name": check_name(args.get("snapshot_name"), InvalidTaskError)}


def _vm(ctx: NodeTaskContext, domain: str) -> VmRecord:
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    return record


def _storage_step(access: StorageAccess, call, *args) -> Any:
    """A storage call with its errors as a TaskError carrying the storage's message."""
    try:
        with mapped_errors(access):
            return call(access.client(), *args)
    except ClusterError as error:
        raise TaskError(str(error)) from None


@dataclass
class Point:
    """What :func:`consistency_point` did: the consistency it gave and what went wrong."""

    consistency: str = Consistency.STOPPED
    notes: list[str] = field(default_factory=list)
    #: The guest could not be thawed or resumed afterwards (it is left frozen or paused).
    stuck: str = ""


@contextlib.contextmanager
def consistency_point(hypervisor: Hypervisor | None, record: VmRecord) -> Iterator[Point]:
    """Hold the VM still while its snapshots are taken.

    A VM not running under ``hypervisor`` is left alone (``stopped``). A running one is
    frozen through its guest agent when its XML has the agent's channel and the agent
    answers, else paused; it is thawed or resumed however the block ends (a failure to do
    so is kept in :attr:`Point.stuck`, not raised over the block's own error).
    """
    point = Point()
    if hypervisor is None or record.uuid not in hypervisor.active():
        yield point
        return
    if has_guest_agent(record.xml):
        try:
            hypervisor.freeze_filesystems(record.uuid)
        except HypervisorError as error:
            point.notes.append(
                f"the guest agent did not freeze the filesystems ({error}), so the VM was paused"
            )
        else:
            point.consistency = Consistency.QUIESCED
            try:
                yield point
            finally:
                point.stuck = _undo("thaw", hypervisor.thaw_filesystems, record)
            return
    hypervisor.pause(record.uuid)
    point.consistency = Consistency.CRASH
    try:
        yield point
    finally:
        point.stuck = _undo("resume", hypervisor.resume, record)


def _undo(what: str, call, record: VmRecord) -> str:
    try:
        call(record.uuid)
    except HypervisorError as error:
        log.error("could not %s VM %s after its snapshot: %s", what, record.meta.name, error)
        return f"could not {what} VM {record.meta.name} after its snapshot: {error}"
    return ""


def _drop_rbd_snapshots(access: StorageAccess, disks: list[tuple[str, str]], name: str) -> list[str]:
    """Remove RBD snapshot ``name`` from each of ``disks`` (absent ones are fine); what failed."""
    failed = []
    for pool, volume in disks:
        try:
            rbd_snapshots.remove(access.client(), pool, volume, name)
        except StorageNotFound:
            continue
        except StorageError as error:
            failed.append(f"{pool}/{volume}@{name}: {error}")
    return failed


def sweep_lost_creation(services: Any, run: tasks.TaskRecord) -> str | None:
    """Remove what a creation whose node died made: its RBD snapshots and its unfinished
    record (a record another task made, or a finished one, is kept)."""
    domain, name = str(run.args.get("domain", "")), str(run.args.get("snapshot_name", ""))
    cluster = services.cluster if isinstance(services, NodeServices) else None
    access = services.storage if isinstance(services, NodeServices) else None
    if cluster is None or access is None:
        return "its snapshots were not checked: this node has no view of the cluster or no Ceph"
    snapshot = read_snapshot(cluster.store.get, domain, name)
    if snapshot is None or snapshot.complete or snapshot.task != run.id:
        return None
    record = read_vm(cluster.store.get, domain)
    try:
        disks = rbd_disks(record, ValueError) if record is not None else []
    except ValueError:
        disks = []
    left = _drop_rbd_snapshots(access, disks, name)
    if left:
        return f"snapshot {name} could not be removed: {'; '.join(left)}"
    forget(cluster.store, domain, name)
    return f"removed the unfinished snapshot {name}"


@task_type(CREATE_TASK, validate=_check_args, on_lost=sweep_lost_creation)
def create_snapshot(ctx: NodeTaskContext, *, domain: str, snapshot_name: str) -> dict[str, Any]:
    """Snapshot every RBD volume of VM ``domain`` at one point, with its XML."""
    record = _vm(ctx, domain)
    vm, placement = record.meta.name, record.placement
    if placement.state in VM_MIGRATING:
        raise TaskError(f"VM {vm} is migrating; nothing was snapshotted")
    if placement.running_on and placement.running_on != ctx.run_on:
        raise TaskError(f"VM {vm} now runs on {placement.running_on}, not on {ctx.run_on}; try again")
    access = need_storage(ctx)
    try:
        claimed = claim(ctx.store, domain, snapshot_name, ctx.task_id)
    except ConflictError:
        raise TaskError(f"VM {vm} already has a snapshot named {snapshot_name}") from None
    except StateError as error:
        raise TaskError(str(error)) from None
    made: list[tuple[str, str]] = []
    try:
        record = _vm(ctx, domain)  # as it is at the snapshot (its disks may have changed)
        disks = rbd_disks(record, TaskError)
        ctx.progress(0, len(disks), f"Snapshotting {len(disks)} volume(s) of VM {vm}")
        hypervisor = ctx.services.hypervisor if isinstance(ctx.services, NodeServices) else None
        started = time.monotonic()
        with consistency_point(hypervisor, record) as point:
            for pool, volume in disks:
                _storage_step(access, rbd_snapshots.create, pool, volume, snapshot_name)
                made.append((pool, volume))
        held_ms = round((time.monotonic() - started) * 1000)
        finished = replace(
            claimed,
            xml=record.xml,
            rbd_snapshots=[f"{pool}/{volume}@{snapshot_name}" for pool, volume in disks],
            consistency=point.consistency,
        )
        complete(ctx.store, domain, finished)
    except BaseException:
        left = _drop_rbd_snapshots(access, made, snapshot_name)
        with contextlib.suppress(Exception):
            forget(ctx.store, domain, snapshot_name)
        if left:
            log.error("VM %s: a failed snapshot left %s", vm, "; ".join(left))
        raise
    message = "; ".join(
        [
            f"Created snapshot {snapshot_name} of VM {vm} ({len(disks)} volume(s), {point.consistency})",
            *point.notes,
        ]
    )
    if point.stuck:  # the snapshot is good, but the guest needs an operator
        raise TaskError(f"{message}; but {point.stuck}")
    ctx.progress(len(disks), len(disks), message)
    return {
        "message": message,
        "snapshot": snapshot_name,
        "consistency": point.consistency,
        "held_ms": held_ms,
    }


@task_type(REMOVE_TASK, validate=_check_args)
def remove_snapshot(ctx: NodeTaskContext, *, domain: str, snapshot_name: str) -> dict[str, Any]:
    """Remove snapshot ``snapshot_name`` of VM ``domain``: its RBD snapshots, then its record."""
    record = _vm(ctx, domain)
    snapshot = read_snapshot(ctx.store.get, domain, snapshot_name)
    if snapshot is None:
        raise TaskError(f"VM {record.meta.name} has no snapshot {snapshot_name}")
    maker = _still_making(ctx.store, snapshot)
    if maker:
        raise TaskError(f"snapshot {snapshot_name} of VM {record.meta.name} is being made by task {maker}")
    access = need_storage(ctx)
    # an unfinished record (its creation was lost) names no volumes: try the VM's own
    disks = snapshot.volumes if snapshot.complete else rbd_disks(record, TaskError)
    ctx.progress(0, len(disks), f"Removing snapshot {snapshot_name} of VM {record.meta.name}")
    left = _drop_rbd_snapshots(access, disks, snapshot_name)
    if left:
        raise TaskError(f"Snapshot {snapshot_name} of VM {record.meta.name} was kept: {'; '.join(left)}")
    forget(ctx.store, domain, snapshot_name)
    message = f"Removed snapshot {snapshot_name} of VM {record.meta.name}"
    ctx.progress(len(disks), len(disks), message)
    return {"message": message}


def _checked_definition(ctx: NodeTaskContext, record: VmRecord, snapshot: VmSnapshot) -> tuple[str, Any]:
    """The snapshot's XML under the VM's current name, checked as an operator's change of
    definition would be (devices the current definition has may stay); TaskError if refused.
    A snapshot taken, imported or received long ago carries no trust of its own."""
    try:
        root, _ = parse(snapshot.xml)
        root.find("name").text = record.meta.name
        xml = etree.tostring(root, pretty_print=True, encoding="unicode")
        policy = node_xml_policy(ctx, admin=False).as_role(False, devices_of(record.xml))
        return parse_xml(xml, policy, uuid=record.uuid)
    except (DomainXMLError, ClusterError) as error:
        raise TaskError(f"the XML of snapshot {snapshot.name} is refused: {error}; nothing changed") from None


def _restored_definition(
    ctx: NodeTaskContext, record: VmRecord, snapshot: VmSnapshot, meta_version: int
) -> None:
    """Make the snapshot's checked XML the VM's definition again; TaskError if the VM's
    metadata changed since ``meta_version`` (read when the rollback began)."""
    xml, summary = _checked_definition(ctx, record, snapshot)
    meta = replace(record.meta, vcpus=summary.vcpus, memory_mib=summary.memory_mib)
    try:
        replace_definition(ctx.store, meta, meta_version, xml)
    except ConflictError:
        raise TaskError(
            f"VM {record.meta.name} changed during the rollback: its disks are at snapshot "
            f"{snapshot.name} but its XML was not restored; try again"
        ) from None


@task_type(ROLLBACK_TASK, validate=_check_args)
def rollback_snapshot(ctx: NodeTaskContext, *, domain: str, snapshot_name: str) -> dict[str, Any]:
    """Return VM ``domain``'s volumes and XML to snapshot ``snapshot_name`` (the VM stopped)."""
    _, meta_version = ctx.store.get_versioned(paths.domain(domain))
    record = _vm(ctx, domain)
    vm = record.meta.name
    snapshot = read_snapshot(ctx.store.get, domain, snapshot_name)
    if snapshot is None or not snapshot.complete:
        raise TaskError(f"VM {vm} has no complete snapshot {snapshot_name}")
    placement = record.placement
    if placement.state not in ROLLBACK_STATES or placement.running_on or placement.held_by:
        raise TaskError(
            f"VM {vm} is {placement.state}: stop or disable it before a rollback; nothing changed"
        )
    _checked_definition(ctx, record, snapshot)  # refused XML: nothing is rolled back
    access = need_storage(ctx)
    disks = snapshot.volumes
    missing = []
    for pool, volume in disks:  # everything is checked before anything changes
        try:
            _storage_step(access, rbd_snapshots.get, pool, volume, snapshot_name)
        except TaskError as error:
            missing.append(str(error))
    if missing:
        raise TaskError(
            f"VM {vm} cannot be rolled back to {snapshot_name}: {'; '.join(missing)}; nothing changed"
        )
    done: list[str] = []
    for index, (pool, volume) in enumerate(disks):
        ctx.progress(index, len(disks) + 1, f"Rolling {pool}/{volume} back to {snapshot_name}")
        try:
            _storage_step(access, rbd_snapshots.rollback, pool, volume, snapshot_name)
        except TaskError as error:
            rolled = f" (already rolled back: {', '.join(done)})" if done else ""
            raise TaskError(f"VM {vm}: {error}{rolled}") from None
        done.append(f"{pool}/{volume}")
    _restored_definition(ctx, record, snapshot, meta_version)
    message = f"Rolled VM {vm} back to snapshot {snapshot_name} ({len(disks)} volume(s) and its XML)"
    ctx.progress(len(disks) + 1, len(disks) + 1, message)
    return {"message": message}


SNAPSHOT_TASKS = (create_snapshot, remove_snapshot, rollback_snapshot)
