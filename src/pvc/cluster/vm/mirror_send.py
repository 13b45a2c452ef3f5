"""Sending a VM snapshot to another cluster (``vm.send_snapshot``, a task on the primary).

The task checks that the destination is a PVC API that takes its key and that the VM is
absent there (a first, full send) or a ``mirror`` that has the incremental parent; then for
each volume it streams the whole image (checked against the CRC-32 the destination read)
or sends the extents changed since the parent in checksummed batches, and seals the volume
with the snapshot; last it sends the VM's configuration, which makes the destination's
mirror show the snapshot. A send cut off half way leaves the destination's volumes marked
partial or rolled back at the next attempt (:mod:`pvc.storage.receive`): the mirror stays
at its previous complete snapshot.
"""

from __future__ import annotations

import logging
from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext, need_storage, node_backup
from pvc.cluster.vm.queries import resolve, task_domain
from pvc.cluster.vm.remote_api import ImageReader, RemoteApi, check_allowed, check_uri, extent_batches
from pvc.cluster.vm.snapshots import check_name
from pvc.config.backup import BackupSection
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.rbd_retarget import retarget_rbd_disks
from pvc.state.states import VMState
from pvc.state.vm_snapshots import VmSnapshot, read_snapshot
from pvc.state.vms import VmRecord, read_vm
from pvc.storage import pools
from pvc.storage.errors import StorageError
from pvc.storage.images import open_image
from pvc.tasks import InvalidTaskError, TaskError, task_type

log = logging.getLogger("pvc.cluster.vm.mirror_send")

SEND_TASK = "vm.send_snapshot"


def submit_send(
    cluster: Cluster,
    vm: str,
    snapshot_name: str,
    uri: str,
    key: str,
    *,
    backup: BackupSection,
    verify: bool = True,
    parent: str | None = None,
    pool: str | None = None,
) -> tasks.TaskRecord:
    """Queue ``vm.send_snapshot`` on the primary; ClusterError (400) for a bad destination
    or one ``backup`` does not allow, a bad name or pool, or an unknown or unfinished
    snapshot or parent."""
    record = resolve(cluster, vm)
    check_uri(uri, ClusterError)
    check_allowed(uri, backup, ClusterError)
    for name in (snapshot_name, parent) if parent else (snapshot_name,):
        found = read_snapshot(cluster.cache.data, record.uuid, check_name(name))
        if found is None or not found.complete:
            raise ClusterError(f"VM '{record.meta.name}' has no complete snapshot '{name}'")
    if pool is not None:
        try:
            pools.check_name(pool)
        except ValueError as error:
            raise ClusterError(str(error)) from None
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to send the snapshot")
    args = {
        "domain": record.uuid,
        "snapshot_name": snapshot_name,
        "destination_api_uri": uri,
        "destination_api_key": key,
        "destination_api_verify_ssl": verify,
        "incremental_parent": parent,
        "destination_storage_pool": pool,
    }
    return task_actions.submit(cluster, send_snapshot, node, args)


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    task_domain(args)
    check_name(args.get("snapshot_name"), InvalidTaskError)
    if args.get("incremental_parent") is not None:
        check_name(args["incremental_parent"], InvalidTaskError)
    check_uri(args.get("destination_api_uri"), InvalidTaskError)
    if not isinstance(args.get("destination_api_key"), str):
        raise InvalidTaskError("destination_api_key must be a string")
    return args


def _complete(ctx: NodeTaskContext, record: VmRecord, name: str) -> VmSnapshot:
    found = read_snapshot(ctx.store.get, record.uuid, name)
    if found is None or not found.complete:
        raise TaskError(f"VM {record.meta.name} has no complete snapshot {name}")
    return found


def check_destination(remote: RemoteApi, vm: str, parent: str | None) -> None:
    """TaskError unless the destination is a PVC API taking the key and VM ``vm`` is absent
    there (a full send: ``parent`` None) or a mirror holding snapshot ``parent``."""
    remote.check()
    there = remote.vm(vm)
    if there is None:
        if parent:
            raise TaskError(f"the destination has no VM {vm}: send a full snapshot first")
        return
    if there.get("state") != VMState.MIRROR:
        raise TaskError(f"VM {vm} exists on the destination and is not a mirror (state {there.get('state')})")
    if not parent:
        raise TaskError(
            f"VM {vm} is a mirror on the destination already: send the changes since a common snapshot"
        )
    if parent not in remote_snapshots(there):
        raise TaskError(f"the destination's mirror of {vm} lacks snapshot {parent}, the incremental parent")


def remote_snapshots(detail: dict) -> list[str]:
    """The snapshot names in a destination's VM detail."""
    return [str(snap.get("name")) for snap in detail.get("snapshots") or [] if isinstance(snap, dict)]


@task_type(SEND_TASK, validate=_check_args)
def send_snapshot(
    ctx: NodeTaskContext,
    *,
    domain: str,
    snapshot_name: str,
    destination_api_uri: str,
    destination_api_key: str,
    destination_api_verify_ssl: bool = True,
    incremental_parent: str | None = None,
    destination_storage_pool: str | None = None,
) -> dict[str, Any]:
    """Send snapshot ``snapshot_name`` of VM ``domain`` to another cluster (see the module)."""
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    remote = allowed_remote(ctx, destination_api_uri, destination_api_key, destination_api_verify_ssl)
    return send_to(
        ctx, record, snapshot_name, remote, parent=incremental_parent, pool=destination_storage_pool
    )


def allowed_remote(ctx: NodeTaskContext, uri: str, key: str, verify: bool) -> RemoteApi:
    """The destination at ``uri``, if this node's configuration lets sends go there
    (``backup.send_destinations``); TaskError otherwise."""
    check_allowed(uri, node_backup(ctx))
    return RemoteApi(uri, key, bool(verify))


def send_to(
    ctx: NodeTaskContext,
    record: VmRecord,
    snapshot_name: str,
    remote: RemoteApi,
    *,
    parent: str | None = None,
    pool: str | None = None,
) -> dict[str, Any]:
    """Check the destination, then send snapshot ``snapshot_name`` of VM ``record``: whole,
    or its changes since ``parent``; volumes into ``pool`` there (default: the same pools)."""
    vm = record.meta.name
    snapshot = _complete(ctx, record, snapshot_name)
    if parent:
        earlier = _complete(ctx, record, parent)
        if sorted(earlier.volumes) != sorted(snapshot.volumes):
            raise TaskError(f"snapshots {parent} and {snapshot_name} of VM {vm} have other volumes")
    ctx.progress(0, 100, f"Checking the destination {remote.base}")
    check_destination(remote, vm, parent)
    access = need_storage(ctx)
    sent = 0
    unverified: list[str] = []
    volumes = snapshot.volumes
    for index, (source_pool, volume) in enumerate(volumes):
        target_pool = pool or source_pool
        ctx.progress(index, len(volumes) + 1, f"Sending {source_pool}/{volume} to {target_pool}/{volume}")
        where = (source_pool, volume, target_pool)
        if parent:
            sent += _send_changes(ctx, access, remote, vm, where, snapshot_name, parent)
        else:
            size, verified = _send_image(ctx, access, remote, vm, where, snapshot_name)
            sent += size
            if not verified:
                unverified.append(f"{target_pool}/{volume}")
        remote.seal(vm, target_pool, volume, snapshot_name)
    pool_map = {source_pool: pool for source_pool, _ in volumes} if pool else {}
    detail = _detail(record, snapshot, pool_map)
    ctx.progress(len(volumes), len(volumes) + 1, "Sending the VM's configuration")
    answer = remote.send_config(vm, snapshot_name, parent, detail)
    kind = "incremental" if parent else "full"
    message = (
        f"Sent {kind} snapshot {snapshot_name} of VM {vm} to {remote.base} ({sent} bytes of data): {answer}"
    )
    result = {"message": message, "bytes": sent, "type": kind, "unverified": unverified}
    if unverified:
        result["message"] += unverified_note(result)
        log.warning("%s", result["message"])
    ctx.progress(len(volumes) + 1, len(volumes) + 1, result["message"])
    return result


def unverified_note(result: dict[str, Any]) -> str:
    """What a send's result says of the copies the destination did not confirm ("" if none)."""
    unverified = result.get("unverified") or []
    if not unverified:
        return ""
    return (
        f"; the destination confirmed no checksum of {', '.join(unverified)} "
        "(it does not check whole images): their copies are unverified"
    )


def _send_image(
    ctx: NodeTaskContext,
    access: StorageAccess,
    remote: RemoteApi,
    vm: str,
    where: tuple[str, str, str],
    name: str,
) -> tuple[int, bool]:
    """Send one volume's whole image at snapshot ``name``: its size, and whether the
    destination confirmed what it got."""
    pool, volume, target_pool = where
    try:
        with open_image(access.client(), pool, volume, snapshot=name) as image:
            size = image.size()

            def progress(done: int) -> None:
                ctx.progress(done // (1024 * 1024), size // (1024 * 1024) or 1, f"Sending {pool}/{volume}")
                ctx.check_cancelled()

            verified = remote.send_image(vm, target_pool, volume, name, ImageReader(image, size, progress))
    except StorageError as error:
        raise TaskError(str(error)) from None
    return size, verified


def _send_changes(
    ctx: NodeTaskContext,
    access: StorageAccess,
    remote: RemoteApi,
    vm: str,
    where: tuple[str, str, str],
    name: str,
    parent: str,
) -> int:
    pool, volume, target_pool = where
    sent = 0
    try:
        with open_image(access.client(), pool, volume, snapshot=name) as image:
            for index, (batch, size) in enumerate(extent_batches(image, parent)):
                remote.send_batch(vm, target_pool, volume, name, parent, batch, ctx.task_id, index)
                sent += size
                ctx.progress(
                    sent // (1024 * 1024),
                    None,
                    f"Sent {sent // (1024 * 1024)} MiB of changes of {pool}/{volume}",
                )
                ctx.check_cancelled()
    except StorageError as error:
        raise TaskError(str(error)) from None
    return sent


def _detail(record: VmRecord, snapshot: VmSnapshot, pool_map: dict[str, str]) -> dict[str, Any]:
    """The VM as the destination needs it: the v1 detail fields of its metadata, the
    snapshot's XML (pools renamed), and the snapshot's time and consistency."""
    try:
        xml = retarget_rbd_disks(snapshot.xml, pools=pool_map, keep_auth=True) if pool_map else snapshot.xml
    except DomainXMLError as error:
        raise TaskError(f"the snapshot's XML: {error}") from None
    meta = record.meta
    return {
        "name": meta.name,
        "uuid": record.uuid,
        "xml": xml,
        "node_limit": list(meta.node_limit),
        "node_selector": meta.node_selector,
        "node_autostart": meta.node_autostart,
        "migration_method": meta.migration_method,
        "migration_max_downtime": meta.migration_max_downtime,
        "tags": list(meta.tags),
        "description": meta.description,
        "profile": meta.profile,
        "snapshots": [{"name": snapshot.name, "timestamp": str(int(snapshot.timestamp))}],
        "snapshot_consistency": snapshot.consistency,
    }


SEND_TASKS = (send_snapshot,)
