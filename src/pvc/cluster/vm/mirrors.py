"""Mirrors of VMs on another cluster: ``vm.create_mirror`` and ``vm.promote_mirror``
(``/vm/{vm}/mirror/create``, ``/vm/{vm}/mirror/promote``; tasks on the primary).

Creating (or updating) a mirror takes a snapshot ``mirror_<datestring>`` of the VM on its
node and sends it: whole when the destination has no such VM, else as the changes since the
newest snapshot both sides have. Promoting shuts the VM down here, sends a last snapshot the
same way (nothing written after it is lost), then has the destination take the VM over in
the state it had here (started, stopped or disabled) and removes the VM here or keeps it as
a mirror of the destination's, ready for a promotion back. A promotion that fails before the
destination took the VM over puts the VM back in its previous state here; one whose last
step failed leaves it stopped here, and says so.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.storage.actions import StorageOps
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext, need_cluster, need_storage
from pvc.cluster.tasks.subtasks import run_subtask
from pvc.cluster.vm import actions, mirror_hold
from pvc.cluster.vm.mirror_send import allowed_remote, remote_snapshots, send_to, unverified_note
from pvc.cluster.vm.queries import resolve, task_domain
from pvc.cluster.vm.remote_api import RemoteApi, check_allowed, check_uri
from pvc.cluster.vm.snapshot_tasks import create_snapshot, remove_snapshot
from pvc.cluster.vm.snapshots import complete_snapshots
from pvc.config.backup import BackupSection
from pvc.domain_xml.parse import rbd_volumes
from pvc.state.states import VM_RUNNING, VMState
from pvc.state.vms import VmRecord, read_vm, update_placement
from pvc.storage import pools, receive
from pvc.tasks import InvalidTaskError, TaskError, task_type

CREATE_TASK = "vm.create_mirror"
PROMOTE_TASK = "vm.promote_mirror"
#: Seconds a mirror's snapshot may take (the VM's node takes it).
SNAPSHOT_TIMEOUT = 600.0
#: Seconds a promotion waits for the VM to shut down here (its node forces it off after
#: the hypervisor's shutdown timeout).
SHUTDOWN_TIMEOUT = 3700.0
#: What the names of mirror snapshots start with.
MIRROR_PREFIX = "mirror_"
#: States a VM cannot be mirrored or promoted from.
REFUSED_STATES = (VMState.MIRROR, VMState.IMPORT)


def mirror_snapshot_name(now: float | None = None) -> str:
    """The name of a mirror snapshot taken at ``now`` (UTC seconds; default: now)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return f"{MIRROR_PREFIX}{moment.strftime('%Y%m%d%H%M%S')}"


def handover_state(state: str) -> str:
    """The state the destination takes a promoted VM over in, from its state here."""
    if state in VM_RUNNING:
        return VMState.START
    return VMState.DISABLE if state == VMState.DISABLE else VMState.STOP


def _submit(
    cluster: Cluster,
    kind,
    vm: str,
    uri: str,
    key: str,
    *,
    backup: BackupSection,
    verify: bool,
    pool: str | None,
    **extra,
):
    record = resolve(cluster, vm)
    if record.placement.state in REFUSED_STATES:
        raise ClusterError(f"VM '{record.meta.name}' is {record.placement.state} here; nothing to send")
    check_uri(uri, ClusterError)
    check_allowed(uri, backup, ClusterError)
    if pool is not None:
        try:
            pools.check_name(pool)
        except ValueError as error:
            raise ClusterError(str(error)) from None
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to send the mirror")
    args = {
        "domain": record.uuid,
        "destination_api_uri": uri,
        "destination_api_key": key,
        "destination_api_verify_ssl": verify,
        "destination_storage_pool": pool,
        **extra,
    }
    return task_actions.submit(cluster, kind, node, args)


def submit_create(
    cluster: Cluster,
    vm: str,
    uri: str,
    key: str,
    *,
    backup: BackupSection,
    verify: bool = True,
    pool: str | None = None,
) -> tasks.TaskRecord:
    """Queue ``vm.create_mirror`` of VM ``vm``; ClusterError (400) for a bad destination or
    one ``backup`` does not allow, a bad pool, or a VM that is a mirror or being imported here."""
    return _submit(cluster, create_mirror, vm, uri, key, backup=backup, verify=verify, pool=pool)


def submit_promote(
    cluster: Cluster,
    vm: str,
    uri: str,
    key: str,
    *,
    backup: BackupSection,
    verify: bool = True,
    pool: str | None = None,
    remove_on_source: bool = False,
) -> tasks.TaskRecord:
    """Queue ``vm.promote_mirror`` of VM ``vm`` (checked as :func:`submit_create`)."""
    return _submit(
        cluster,
        promote_mirror,
        vm,
        uri,
        key,
        backup=backup,
        verify=verify,
        pool=pool,
        remove_on_source=remove_on_source,
    )


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    task_domain(args)
    check_uri(args.get("destination_api_uri"), InvalidTaskError)
    if not isinstance(args.get("destination_api_key"), str):
        raise InvalidTaskError("destination_api_key must be a string")
    pool = args.get("destination_storage_pool")
    if pool is not None:
        try:
            pools.check_name(pool)
        except ValueError as error:
            raise InvalidTaskError(str(error)) from None
    return args


def _vm(ctx: NodeTaskContext, domain: str) -> VmRecord:
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    if record.placement.state in REFUSED_STATES:
        raise TaskError(f"VM {record.meta.name} is {record.placement.state} here; nothing to send")
    return record


def common_parent(ctx: NodeTaskContext, record: VmRecord, remote: RemoteApi) -> str | None:
    """The snapshot to send changes from: the newest one both sides have; None when the
    destination has no VM of that name (a whole send). TaskError when it has one that is
    not a mirror, or a mirror that shares no snapshot with the VM here."""
    remote.check()
    vm = record.meta.name
    there = remote.vm(vm)
    if there is None:
        return None
    if there.get("state") != VMState.MIRROR:
        raise TaskError(f"VM {vm} exists on the destination and is not a mirror (state {there.get('state')})")
    theirs = set(remote_snapshots(there))
    ours = complete_snapshots(ctx.store.get, ctx.store.children, record)
    for snapshot in reversed(ours):
        if snapshot.name in theirs:
            return snapshot.name
    raise TaskError(
        f"the destination's mirror of {vm} shares no snapshot with VM {vm} here: remove it there and "
        "create the mirror again"
    )


def snapshot_and_send(
    ctx: NodeTaskContext, record: VmRecord, remote: RemoteApi, pool: str | None, steps: tuple[int, int]
) -> dict[str, Any]:
    """Take a mirror snapshot of ``record`` on its node and send it; the send's result. A
    snapshot that could not be sent is removed again."""
    done, total = steps
    parent = common_parent(ctx, record, remote)
    name = mirror_snapshot_name()
    node = record.placement.running_on or ctx.run_on
    ctx.progress(done, total, f"Taking snapshot {name} of VM {record.meta.name} on {node}")
    run_subtask(
        ctx, create_snapshot, node, {"domain": record.uuid, "snapshot_name": name}, timeout=SNAPSHOT_TIMEOUT
    )
    try:
        result = send_to(ctx, record, name, remote, parent=parent, pool=pool)
    except BaseException:
        remove_snapshot(ctx, domain=record.uuid, snapshot_name=name)
        raise
    return {**result, "snapshot": name}


@task_type(CREATE_TASK, validate=_check_args)
def create_mirror(
    ctx: NodeTaskContext,
    *,
    domain: str,
    destination_api_uri: str,
    destination_api_key: str,
    destination_api_verify_ssl: bool = True,
    destination_storage_pool: str | None = None,
) -> dict[str, Any]:
    """Snapshot VM ``domain`` and send it to the destination (see the module)."""
    record = _vm(ctx, domain)
    remote = allowed_remote(ctx, destination_api_uri, destination_api_key, destination_api_verify_ssl)
    result = snapshot_and_send(ctx, record, remote, destination_storage_pool, (0, 2))
    message = f"Mirror of VM {record.meta.name} on {remote.base} is at snapshot {result['snapshot']}"
    ctx.progress(2, 2, message)
    details = f"({result['type']}, {result['bytes']} bytes of data){unverified_note(result)}"
    return {**result, "message": f"{message} {details}"}


@task_type(PROMOTE_TASK, validate=_check_args, on_lost=mirror_hold.sweep_lost_hold)
def promote_mirror(
    ctx: NodeTaskContext,
    *,
    domain: str,
    destination_api_uri: str,
    destination_api_key: str,
    destination_api_verify_ssl: bool = True,
    destination_storage_pool: str | None = None,
    remove_on_source: bool = False,
) -> dict[str, Any]:
    """Hand VM ``domain`` over to the destination (see the module)."""
    cluster = need_cluster(ctx)
    record = _vm(ctx, domain)
    vm = record.meta.name
    remote = allowed_remote(ctx, destination_api_uri, destination_api_key, destination_api_verify_ssl)
    common_parent(ctx, record, remote)  # refuse before the VM goes down
    previous = record.placement.state
    target = handover_state(previous)
    if previous in VM_RUNNING:
        ctx.progress(0, 4, f"Shutting down VM {vm}")
        _shut_down(cluster, record)
    mirror_hold.hold(cluster, record, ctx.task_id)
    running = previous in VM_RUNNING
    try:
        ctx.progress(1, 4, f"Sending a last snapshot of VM {vm}")
        sent = snapshot_and_send(ctx, record, remote, destination_storage_pool, (1, 4))
    except BaseException:
        mirror_hold.release(cluster, record, ctx.task_id, VMState.START if running else previous)
        raise
    ctx.progress(2, 4, f"Taking VM {vm} over on {remote.base} ({target})")
    try:
        mirror_hold.check_held(cluster, record, ctx.task_id)
        answer = remote.set_state(vm, target)
    except BaseException as error:
        mirror_hold.release(cluster, record, ctx.task_id, VMState.STOP if running else previous)
        if not isinstance(error, TaskError):
            raise
        raise TaskError(
            f"{error}. VM {vm} is stopped here and the destination has its last snapshot "
            f"{sent['snapshot']}: check the destination, then start it there or here"
        ) from None
    ctx.progress(3, 4, f"{'Removing' if remove_on_source else 'Keeping'} VM {vm} here")
    if remove_on_source:
        mirror_hold.release(cluster, record, ctx.task_id, VMState.STOP)
        storage = StorageOps(cluster, need_storage(ctx))
        here = actions.remove(cluster, record.uuid, delete_disks=True, storage=storage)
    else:
        here = _keep_as_mirror(ctx, record)
    message = f"Promoted VM {vm} on {remote.base} at snapshot {sent['snapshot']}: {answer}. {here}"
    message += unverified_note(sent)
    ctx.progress(4, 4, message)
    return {**sent, "message": message, "state": target, "removed": remove_on_source}


def _keep_as_mirror(ctx: NodeTaskContext, record: VmRecord) -> str:
    access = need_storage(ctx)
    with mapped_errors(access):
        for pool, volume in rbd_volumes(record.xml):
            receive.take_ownership(access.client(), record.meta.name, pool, volume)
    update_placement(ctx.store, record.uuid, lambda p: replace(p, state=VMState.MIRROR, held_by=""))
    return f"VM {record.meta.name} is kept here as a mirror of the destination's"


def _shut_down(cluster: Cluster, record: VmRecord) -> None:
    try:
        actions.request_state(cluster, record.uuid, VMState.SHUTDOWN, wait=True, timeout=SHUTDOWN_TIMEOUT)
    except ClusterError as error:
        raise TaskError(f"VM {record.meta.name} did not shut down: {error}") from None


MIRROR_TASKS = (create_mirror, promote_mirror)
