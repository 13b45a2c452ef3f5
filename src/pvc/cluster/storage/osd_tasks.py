"""OSD work as tasks on the OSD's node: add, remove, replace, refresh, and the OSD DB volume group.

The API checks the request and queues the task on the node that owns the device; that
node's task worker does the work through its :class:`~pvc.storage.osd_keeper.OsdKeeper`
(file-backed lab OSDs) or ``ceph-volume`` (block devices), records where the OSD lives
under ``/ceph/osd_devices/<id>`` and refreshes the OSD mirror.

Devices: ``file`` (or ``file:<label>``) is a file-backed BlueStore OSD in the node's
state directory; an absolute path must be a block device on that node.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError
from pvc.cluster.node.queries import get_node
from pvc.cluster.session import Cluster
from pvc.cluster.storage import mirror, queries
from pvc.cluster.storage.access import StorageAccess, mapped_errors
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext, need_osds
from pvc.state import osd_devices
from pvc.state.osd_devices import OsdDevice
from pvc.storage import ceph_volume, daemons, devices, lvm, osds
from pvc.storage.errors import StorageDeviceError, StorageError, StorageToolError
from pvc.storage.lvm import DB_VG_NAME
from pvc.storage.units import parse_size
from pvc.tasks import InvalidTaskError, TaskError, task_type

#: Seconds an OSD may take from start to ``up``.
UP_TIMEOUT = 60.0
#: Seconds a removal waits for the OSD's data to move elsewhere.
DRAIN_TIMEOUT = 900.0
MAX_OSDS_PER_DEVICE = 8
FILE_KIND, BLOCK_KIND = "file", "block"
MIB = 1024**2
#: The smallest external OSD DB device accepted (BlueFS needs room for RocksDB and its WAL).
MIN_DB_SIZE = 256 * MIB


def device_kind(device: str) -> str:
    """``file`` for the lab's file-backed device, ``block`` for an absolute device path."""
    if device == FILE_KIND or device.startswith(f"{FILE_KIND}:"):
        return FILE_KIND
    if device.startswith("/") and ".." not in device.split("/"):
        return BLOCK_KIND
    raise ClusterError(f"device '{device}' must be a block device path (/dev/...) or 'file' (lab)")


def _db_bytes(size: str, error: type[Exception]) -> int:
    """An external DB size (``ext_db_size``, PVC units) in bytes; ``error`` if invalid or too small."""
    try:
        value = parse_size(size)
    except ValueError as exc:
        raise error(f"invalid ext_db_size '{size}': {exc}") from None
    if value < MIN_DB_SIZE:
        raise error(f"ext_db_size '{size}' is too small: at least {MIN_DB_SIZE // MIB}M")
    return value


def submit_add(
    cluster: Cluster,
    node: str,
    device: str,
    weight: float,
    *,
    ext_db_ratio: float | None = None,
    ext_db_size: str | None = None,
    osd_count: int | None = None,
) -> tasks.TaskRecord:
    """Queue the creation of ``osd_count`` OSDs on ``device`` of ``node``."""
    get_node(cluster, node)  # 404 for an unknown node
    kind = device_kind(device)
    if weight <= 0:
        raise ClusterError("weight must be positive")
    count = osd_count or 1
    if not 1 <= count <= MAX_OSDS_PER_DEVICE:
        raise ClusterError(f"osd_count must be 1-{MAX_OSDS_PER_DEVICE}")
    if ext_db_ratio is not None and ext_db_size is not None:
        raise ClusterError("give ext_db_ratio or ext_db_size, not both")
    if ext_db_ratio is not None and not 0 < ext_db_ratio < 1:
        raise ClusterError("ext_db_ratio must be between 0 and 1 (e.g. 0.05)")
    if ext_db_size is not None:
        _db_bytes(ext_db_size, ClusterError)
    if kind == BLOCK_KIND and count > 1 and (ext_db_ratio is not None or ext_db_size is not None):
        raise ClusterError("an external DB for several OSDs on one device is not supported; use osd_count=1")
    args = {"device": device, "weight": weight, "osd_count": count}
    if ext_db_ratio is not None:
        args["ext_db_ratio"] = ext_db_ratio
    if ext_db_size is not None:
        args["ext_db_size"] = ext_db_size
    return task_actions.submit(cluster, osd_add, node, args)


def _placement_node(cluster: Cluster, osd_id: str) -> str:
    queries.get_osd(cluster, osd_id)  # 404 for unknown OSDs
    node = osd_devices.read(cluster.cache.data, osd_id).node
    if not node:
        raise ClusterError(f"OSD {osd_id} was not created by PVC: no node is recorded for it")
    return node


def submit_remove(cluster: Cluster, osd_id: str, *, force: bool, confirmed: bool) -> tasks.TaskRecord:
    """Queue the removal of an OSD on its node (drain, stop, purge); needs confirmation."""
    if not confirmed:
        raise ClusterError(
            "Removing an OSD moves its data away and purges it: confirm with yes-i-really-mean-it"
        )
    node = _placement_node(cluster, osd_id)
    return task_actions.submit(cluster, osd_remove, node, {"osd_id": int(osd_id), "force": force})


def submit_replace(
    cluster: Cluster, osd_id: str, new_device: str, *, weight: float | None, confirmed: bool
) -> tasks.TaskRecord:
    """Queue the replacement of an OSD's device, keeping its id; needs confirmation."""
    if not confirmed:
        raise ClusterError("Replacing an OSD destroys its data: confirm with yes-i-really-mean-it")
    device_kind(new_device)
    if weight is not None and weight <= 0:
        raise ClusterError("weight must be positive")
    node = _placement_node(cluster, osd_id)
    args: dict[str, Any] = {"osd_id": int(osd_id), "device": new_device}
    if weight is not None:
        args["weight"] = weight
    return task_actions.submit(cluster, osd_replace, node, args)


def submit_refresh(cluster: Cluster, osd_id: str, device: str) -> tasks.TaskRecord:
    """Queue bringing an existing OSD back up from its device on its node."""
    device_kind(device)
    node = _placement_node(cluster, osd_id)
    return task_actions.submit(cluster, osd_refresh, node, {"osd_id": int(osd_id), "device": device})


def submit_db_vg(cluster: Cluster, node: str, device: str) -> tasks.TaskRecord:
    """Queue the creation of the OSD DB volume group on a block device of ``node``."""
    get_node(cluster, node)  # 404 for an unknown node
    if device_kind(device) != BLOCK_KIND:
        raise ClusterError("the OSD DB volume group needs a block device (/dev/...)")
    return task_actions.submit(cluster, osd_db_vg, node, {"device": device})


# --- the node side ---------------------------------------------------------------------------


def _remember_device(
    ctx: NodeTaskContext,
    osd_id: int,
    device: str,
    kind: str,
    weight: float,
    db_device: str = "",
    db_size: int = 0,
) -> None:
    recorded = OsdDevice(
        node=ctx.run_on, device=device, db_device=db_device, db_size=db_size, kind=kind, weight=weight
    )
    osd_devices.write(ctx.store, osd_id, recorded)


def _publish_osds(ctx: NodeTaskContext, access: StorageAccess) -> None:
    mirror.publish_scope(ctx.store, mirror.osd_scope(access.client()))


@contextmanager
def _host_errors() -> Iterator[None]:
    """A device that is no block device, or a failed ceph-volume/LVM run, fails the task with its reason."""
    try:
        yield
    except (StorageDeviceError, StorageToolError) as error:
        raise TaskError(str(error)) from None


def _db_size(
    access: StorageAccess, device: str, count: int, ratio: float | None, size: str | None
) -> int | None:
    """The external DB size per OSD in bytes (None: no external DB)."""
    if size is not None:
        return _db_bytes(size, TaskError)
    if ratio is None:
        return None
    if device_kind(device) == FILE_KIND:
        data = daemons.block_size(access.conf_path)
    else:
        with _host_errors():
            data = devices.size_bytes(device) // count
    wanted = int(data * float(ratio))
    if wanted < MIN_DB_SIZE:
        minimum = MIN_DB_SIZE // MIB
        raise TaskError(f"ext_db_ratio {ratio} gives a DB of {wanted // MIB}M: at least {minimum}M")
    return wanted


def _create(
    ctx: NodeTaskContext,
    device: str,
    weight: float,
    count: int,
    osd_id: int | None = None,
    db_size: int | None = None,
) -> list[int]:
    """Create OSDs on ``device`` here (with an external DB of ``db_size`` bytes); their ids once up."""
    access, keeper = need_osds(ctx)
    kind = device_kind(device)
    created: list[int] = []
    with mapped_errors(access):
        client = access.client()
        if kind == FILE_KIND:
            for number in range(count):
                ctx.progress(number, count + 1, f"Creating OSD {number + 1} of {count} on {device}")
                osd = keeper.create_file_osd(osd_id=osd_id, db_size=db_size)
                db = str(daemons.db_file(keeper.data_dir / f"osd.{osd.osd_id}")) if db_size else ""
                created.append(osd.osd_id)
                _remember_device(ctx, osd.osd_id, device, kind, weight, db, db_size or 0)
        else:
            ctx.progress(0, count + 1, f"Creating {count} OSD(s) on {device}")
            with _host_errors():
                made = ceph_volume.create_osds(client, device, count, osd_id, db_size)
            for new_id, db in made:
                created.append(new_id)
                _remember_device(ctx, new_id, device, kind, weight, db, db_size or 0)
        ctx.progress(count, count + 1, f"Waiting for OSD(s) {', '.join(map(str, created))} to come up")
        osds.wait_up(client, created, UP_TIMEOUT)
        for new_id in created:  # an OSD enters the CRUSH map when it first boots
            osds.weight(client, new_id, weight)
    _publish_osds(ctx, access)
    return created


def _check_add(args: dict[str, Any]) -> dict[str, Any]:
    device = args.get("device")
    if not isinstance(device, str):
        raise InvalidTaskError("device must be a string")
    try:
        device_kind(device)
    except ClusterError as error:
        raise InvalidTaskError(str(error)) from None
    return args


@task_type("storage.osd_add", validate=_check_add)
def osd_add(
    ctx: NodeTaskContext,
    *,
    device: str,
    weight: float = 1.0,
    osd_count: int = 1,
    ext_db_ratio: float | None = None,
    ext_db_size: str | None = None,
) -> dict[str, Any]:
    """Create ``osd_count`` OSDs on ``device`` of this node and wait until they are up.

    With ``ext_db_size`` (PVC units) or ``ext_db_ratio`` (of each OSD's data size) every
    OSD gets a dedicated DB device: a logical volume in the OSD DB volume group
    (``osddb``) for block devices, a file beside the OSD's for the lab's file device.
    """
    access, _ = need_osds(ctx)
    db_size = _db_size(access, device, int(osd_count), ext_db_ratio, ext_db_size)
    created = _create(ctx, device, float(weight), int(osd_count), db_size=db_size)
    names = ", ".join(f"osd.{i}" for i in created)
    return {"message": f"Created {names} on {ctx.run_on} ({device})", "osd_ids": created}


def _drain_and_stop(ctx: NodeTaskContext, osd_id: int, *, force: bool) -> None:
    access, keeper = need_osds(ctx)
    with mapped_errors(access):
        client = access.client()
        osds.get(client, osd_id)
        ctx.progress(0, 3, f"Marking osd.{osd_id} out and waiting for its data to move")
        try:
            daemons.remove_osd(
                client,
                osd_id,
                access.conf_path,
                process=keeper.process(osd_id),
                data_dir=keeper.data_dir,
                timeout=1.0 if force else DRAIN_TIMEOUT,
            )
        except StorageError:
            if not force:
                raise
            keeper.stop_osd(osd_id)
            osds.purge(client, osd_id, force=True)
        keeper.forget(osd_id)


@task_type("storage.osd_remove")
def osd_remove(ctx: NodeTaskContext, *, osd_id: int, force: bool = False) -> dict[str, Any]:
    """Drain, stop and purge an OSD of this node (``force``: without waiting for the drain)."""
    access, _ = need_osds(ctx)
    _drain_and_stop(ctx, int(osd_id), force=force)
    ctx.progress(2, 3, f"Forgetting osd.{osd_id}")
    osd_devices.forget(ctx.store, int(osd_id))
    _publish_osds(ctx, access)
    return {"message": f"Removed osd.{osd_id} from {ctx.run_on}"}


@task_type("storage.osd_replace")
def osd_replace(
    ctx: NodeTaskContext, *, osd_id: int, device: str, weight: float | None = None
) -> dict[str, Any]:
    """Replace an OSD's device, keeping its id: drain and destroy the old, create on ``device``."""
    access, keeper = need_osds(ctx)
    osd_id = int(osd_id)
    previous = osd_devices.read(ctx.store.get, osd_id)
    with mapped_errors(access):
        client = access.client()
        osds.get(client, osd_id)
        ctx.progress(0, 3, f"Marking osd.{osd_id} out and waiting for its data to move")
        osds.set_out(client, [osd_id])
        daemons.wait_safe_to_destroy(client, osd_id, DRAIN_TIMEOUT)
        keeper.stop_osd(osd_id)
        osds.destroy(client, osd_id, force=True)  # seen safe to destroy just now
    # the new device gets a DB device of the same size as the old one had
    db_size = previous.db_size or None
    _create(ctx, device, float(weight or previous.weight or 1.0), 1, osd_id=osd_id, db_size=db_size)
    return {"message": f"Replaced the device of osd.{osd_id} on {ctx.run_on} with {device}"}


@task_type("storage.osd_refresh")
def osd_refresh(ctx: NodeTaskContext, *, osd_id: int, device: str) -> dict[str, Any]:
    """Bring an existing OSD of this node up again from its data (after a restart or reinstall)."""
    access, keeper = need_osds(ctx)
    osd_id = int(osd_id)
    kind = device_kind(device)
    previous = osd_devices.read(ctx.store.get, osd_id)
    with mapped_errors(access):
        client = access.client()
        osds.get(client, osd_id)
        if kind == FILE_KIND:
            keeper.start_osd(osd_id)
        else:
            with _host_errors():
                devices.require_block_device(device)
                ceph_volume.activate_all()
        weight = float(previous.weight or 1.0)
        _remember_device(ctx, osd_id, device, kind, weight, previous.db_device, previous.db_size)
        osds.wait_up(client, [osd_id], UP_TIMEOUT, require_in=False)
    _publish_osds(ctx, access)
    return {"message": f"Refreshed osd.{osd_id} on {ctx.run_on} ({device})"}


@task_type("storage.osd_db_vg")
def osd_db_vg(ctx: NodeTaskContext, *, device: str) -> dict[str, Any]:
    """Create the OSD DB volume group on a block device of this node."""
    with _host_errors():
        devices.require_block_device(device)
        ctx.progress(0, 2, f"Creating LVM physical volume on {device}")
        lvm.create_physical_volume(device)
        ctx.progress(1, 2, f"Creating volume group {DB_VG_NAME}")
        lvm.create_db_volume_group(device)
    return {"message": f"Created OSD DB volume group {DB_VG_NAME} on {device} of {ctx.run_on}"}


#: The OSD task types, for the node daemon's registry.
OSD_TASKS = (osd_add, osd_remove, osd_replace, osd_refresh, osd_db_vg)
