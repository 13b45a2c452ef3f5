"""VM backups in the PVC v1 shape: back up, remove a backup, restore (tasks, waited for)."""

from __future__ import annotations

from pvc.api.context import cluster, ctx
from pvc.api.replies import task_waited
from pvc.api.routes import ADMIN, OPERATOR, Arg, RouteGroup
from pvc.cluster.vm import backups

group = RouteGroup("vm")
RESPONSES = {
    "200": "Done",
    "202": "Accepted: still running as a task (poll /tasks/{id})",
    "400": "Bad request, or the task failed",
    "404": "Not found",
    "409": "Conflict",
}
PATH_HELP = "a directory under one of the cluster's backup.paths"


def _waited(record):
    context = ctx()
    return task_waited(context.cluster, context.wait_gate, record)


@group.route(
    "/vm/<vm>/backup",
    "POST",
    summary="Back a VM up under a backup path: a snapshot, exported whole or as changes since a kept backup",
    role=OPERATOR,
    args=[
        Arg("backup_path", required=True, help=PATH_HELP),
        Arg("incremental_parent", help="the datestring of an earlier backup whose snapshot was kept"),
        Arg(
            "retain_snapshot", kind=bool, default=False, help="keep the backup's snapshot (for incrementals)"
        ),
    ],
    responses=RESPONSES,
)
def vm_backup(vm: str, backup_path: str, incremental_parent: str | None, retain_snapshot: bool):
    roots = ctx().backup.paths
    return _waited(
        backups.submit_backup(cluster(), roots, vm, backup_path, incremental_parent, retain_snapshot)
    )


@group.route(
    "/vm/<vm>/backup",
    "DELETE",
    summary="Remove a VM backup (refused while a later incremental backup builds on it)",
    role=OPERATOR,
    args=[Arg("backup_path", required=True, help=PATH_HELP), Arg("backup_datestring", required=True)],
    responses=RESPONSES,
)
def vm_backup_remove(vm: str, backup_path: str, backup_datestring: str):
    return _waited(backups.submit_remove(cluster(), ctx().backup.paths, vm, backup_path, backup_datestring))


@group.route(
    "/vm/<vm>/restore",
    "POST",
    summary="Restore a VM that does not exist from a backup (and the backups it builds on)",
    role=ADMIN,
    args=[
        Arg("backup_path", required=True, help=PATH_HELP),
        Arg("backup_datestring", required=True),
        Arg("retain_snapshot", kind=bool, default=True, help="keep the restored snapshots as VM snapshots"),
    ],
    responses=RESPONSES,
)
def vm_restore(vm: str, backup_path: str, backup_datestring: str, retain_snapshot: bool):
    roots = ctx().backup.paths
    return _waited(
        backups.submit_restore(cluster(), roots, vm, backup_path, backup_datestring, retain_snapshot)
    )
