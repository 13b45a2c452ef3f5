"""VM backups, the PVC v1 way: ``/vm/{vm}/backup`` and ``/vm/{vm}/restore``.

A backup is a VM snapshot named ``backup_<datestring>`` (``YYYYMMDDhhmmss``, UTC) exported
under a backup path, whole or as the changes since an earlier backup whose snapshot was
kept (``retain_snapshot``); without ``retain_snapshot`` the snapshot is removed once the
export is written. It runs as the task ``vm.backup`` on the primary, which takes the
snapshot through ``vm.create_snapshot`` on the VM's node. A restore imports a backup (and
the backups it builds on) into a VM that does not exist; removing a backup deletes its
directory, unless a later incremental backup depends on it.
"""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, datetime
from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext
from pvc.cluster.tasks.subtasks import run_subtask
from pvc.cluster.vm.queries import resolve, task_domain
from pvc.cluster.vm.snapshot_export import backup_roots, checked_directory, export_snapshot, import_snapshot
from pvc.cluster.vm.snapshot_files import MANIFEST, ExportError, Manifest, export_directory
from pvc.cluster.vm.snapshot_tasks import create_snapshot, remove_snapshot
from pvc.state.vm_snapshots import read_snapshot
from pvc.state.vms import read_vm
from pvc.tasks import InvalidTaskError, TaskError, task_type

DATESTRING = re.compile(r"\d{14}")
#: Seconds the backup waits for its snapshot (a VM's node takes it).
SNAPSHOT_TIMEOUT = 600.0


def snapshot_of(datestring: str) -> str:
    """The VM snapshot a backup of ``datestring`` is made from."""
    return f"backup_{datestring}"


def check_datestring(value: object, error: type[Exception] = ClusterError) -> str:
    """``value`` if it is a backup's datestring (``YYYYMMDDhhmmss``), else ``error``."""
    if not isinstance(value, str) or not DATESTRING.fullmatch(value):
        raise error(f"{value!r} is not a backup datestring (YYYYMMDDhhmmss)")
    return value


def _primary(cluster: Cluster) -> str:
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to handle the backup")
    return node


def submit_backup(
    cluster: Cluster, roots: list[str], vm: str, backup_path: str, parent: str | None, retain: bool
) -> tasks.TaskRecord:
    """Queue ``vm.backup`` of VM ``vm``; ClusterError (400) for a path outside ``roots`` or an
    incremental parent whose snapshot was not kept."""
    record = resolve(cluster, vm)
    checked_directory(backup_path, roots, ClusterError)
    if parent is not None:
        found = read_snapshot(cluster.cache.data, record.uuid, snapshot_of(check_datestring(parent)))
        if found is None:
            raise ClusterError(
                f"VM '{record.meta.name}' has no snapshot of backup {parent}: an incremental backup needs "
                "its parent's snapshot (back the parent up with retain_snapshot)"
            )
    args = {"domain": record.uuid, "backup_path": backup_path, "incremental_parent": parent, "retain": retain}
    return task_actions.submit(cluster, backup_vm, _primary(cluster), args)


def submit_restore(
    cluster: Cluster, roots: list[str], vm: str, backup_path: str, datestring: str, retain: bool
):
    """Queue the import of backup ``datestring`` of VM ``vm`` (which must not exist)."""
    checked_directory(backup_path, roots, ClusterError)
    if cluster.cache.vm_uuid_by_name(vm):
        raise ClusterError(f"VM '{vm}' exists; remove it before restoring it from a backup")
    args = {
        "domain": vm,
        "snapshot_name": snapshot_of(check_datestring(datestring)),
        "import_path": backup_path,
        "retain_snapshot": retain,
    }
    return task_actions.submit(cluster, import_snapshot, _primary(cluster), args)


def submit_remove(cluster: Cluster, roots: list[str], vm: str, backup_path: str, datestring: str):
    """Queue ``vm.remove_backup`` of backup ``datestring`` of VM ``vm`` (the VM may be gone)."""
    checked_directory(backup_path, roots, ClusterError)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", vm or ""):
        raise ClusterError(f"VM name {vm!r} is invalid")
    args = {"domain": vm, "backup_path": backup_path, "datestring": check_datestring(datestring)}
    return task_actions.submit(cluster, remove_backup, _primary(cluster), args)


def _check_backup(args: dict[str, Any]) -> dict[str, Any]:
    task_domain(args)
    if args.get("incremental_parent") is not None:
        check_datestring(args["incremental_parent"], InvalidTaskError)
    if not isinstance(args.get("backup_path"), str):
        raise InvalidTaskError("backup_path must be a path")
    return args


@task_type("vm.backup", validate=_check_backup)
def backup_vm(
    ctx: NodeTaskContext,
    *,
    domain: str,
    backup_path: str,
    incremental_parent: str | None = None,
    retain: bool = False,
) -> dict[str, Any]:
    """Snapshot VM ``domain`` (on its node), export the snapshot here, drop it unless kept."""
    checked_directory(backup_path, backup_roots(ctx), TaskError)
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    datestring = datetime.fromtimestamp(time.time(), UTC).strftime("%Y%m%d%H%M%S")
    snapshot = snapshot_of(datestring)
    node = record.placement.running_on or ctx.run_on
    ctx.progress(0, 3, f"Taking snapshot {snapshot} of VM {record.meta.name} on {node}")
    run_subtask(
        ctx, create_snapshot, node, {"domain": domain, "snapshot_name": snapshot}, timeout=SNAPSHOT_TIMEOUT
    )
    parent = snapshot_of(incremental_parent) if incremental_parent else None
    try:
        ctx.progress(1, 3, f"Exporting snapshot {snapshot}")
        exported = export_snapshot(
            ctx, domain=domain, snapshot_name=snapshot, export_path=backup_path, incremental_parent=parent
        )
    except BaseException:
        remove_snapshot(ctx, domain=domain, snapshot_name=snapshot)
        raise
    if not retain:
        ctx.progress(2, 3, f"Removing snapshot {snapshot}")
        remove_snapshot(ctx, domain=domain, snapshot_name=snapshot)
    kind = exported["type"]
    message = f"Backed up VM {record.meta.name} ({kind}) as {datestring} to {exported['path']}"
    ctx.progress(3, 3, message)
    return {"message": message, "datestring": datestring, "type": kind, "path": exported["path"]}


def _check_remove(args: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(args.get("domain"), str) or "/" in args["domain"] or args["domain"] in ("", ".", ".."):
        raise InvalidTaskError("domain must name a VM")
    check_datestring(args.get("datestring"), InvalidTaskError)
    if not isinstance(args.get("backup_path"), str):
        raise InvalidTaskError("backup_path must be a path")
    return args


@task_type("vm.remove_backup", validate=_check_remove)
def remove_backup(ctx: NodeTaskContext, *, domain: str, backup_path: str, datestring: str) -> dict[str, Any]:
    """Delete the directory of backup ``datestring`` of VM ``domain`` unless another depends on it."""
    root = checked_directory(backup_path, backup_roots(ctx), TaskError)
    snapshot = snapshot_of(datestring)
    target = export_directory(root, domain, snapshot)
    if not target.is_dir():
        raise TaskError(f"there is no backup {datestring} of VM {domain} in {backup_path}")
    for other in (root / domain).iterdir():
        manifest_file = other / MANIFEST
        if other == target or not manifest_file.is_file():
            continue
        try:
            manifest = Manifest.from_json(manifest_file.read_text(), str(manifest_file))
        except (ExportError, OSError):
            continue
        if manifest.parent == snapshot:
            raise TaskError(f"backup {other.name} of VM {domain} builds on {datestring}: remove it first")
    shutil.rmtree(target)
    message = f"Removed backup {datestring} of VM {domain} from {backup_path}"
    return {"message": message}


BACKUP_TASKS = (backup_vm, remove_backup)
