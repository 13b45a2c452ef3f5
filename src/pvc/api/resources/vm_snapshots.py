"""VM snapshots: take, remove, roll back, export and import (tasks) and list."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster, ctx
from pvc.api.replies import task_accepted
from pvc.api.routes import ADMIN, OK_404, OPERATOR, Arg, RouteGroup
from pvc.cluster.vm import snapshot_export, snapshot_tasks, snapshots

group = RouteGroup("vm")
TASK_RESPONSES = {"202": "Accepted (a task)", "400": "Bad request", "404": "Not found", "409": "Conflict"}
NAME_HELP = f"the snapshot's name: {snapshots.NAME_RULE}"


@group.route("/vm/<vm>/snapshot", summary="List a VM's snapshots, oldest first", responses=OK_404)
def vm_snapshot_list(vm: str):
    return jsonify(snapshots.list_snapshots(cluster(), vm))


@group.route(
    "/vm/<vm>/snapshot",
    "POST",
    summary="Snapshot every RBD volume of a VM at one point, with its XML (a task on its node)",
    role=OPERATOR,
    args=[Arg("snapshot_name", help=f"{NAME_HELP}; default: the time, YYYYMMDDhhmmss (UTC)")],
    responses=TASK_RESPONSES,
)
def vm_snapshot_create(vm: str, snapshot_name: str | None):
    return task_accepted(snapshot_tasks.submit_create(cluster(), vm, snapshot_name))


@group.route(
    "/vm/<vm>/snapshot",
    "DELETE",
    summary="Remove a VM snapshot and its RBD snapshots (a task on the primary)",
    role=OPERATOR,
    args=[Arg("snapshot_name", required=True, help=NAME_HELP)],
    responses=TASK_RESPONSES,
)
def vm_snapshot_remove(vm: str, snapshot_name: str):
    return task_accepted(snapshot_tasks.submit_remove(cluster(), vm, snapshot_name))


@group.route(
    "/vm/<vm>/snapshot/rollback",
    "POST",
    summary="Return a stopped VM's volumes and XML to a snapshot (a task on the primary)",
    role=OPERATOR,
    args=[Arg("snapshot_name", required=True, help=NAME_HELP)],
    responses=TASK_RESPONSES,
)
def vm_snapshot_rollback(vm: str, snapshot_name: str):
    return task_accepted(snapshot_tasks.submit_rollback(cluster(), vm, snapshot_name))


@group.route(
    "/vm/<vm>/snapshot/export",
    "POST",
    summary="Write a VM snapshot (whole, or its changes since a parent) under a backup path (a primary task)",
    role=OPERATOR,
    args=[
        Arg("snapshot_name", required=True, help=NAME_HELP),
        Arg("export_path", required=True, help="a directory under one of the cluster's backup.paths"),
        Arg(
            "incremental_parent",
            help="an earlier snapshot exported to the same path: export only the changes",
        ),
    ],
    responses=TASK_RESPONSES,
)
def vm_snapshot_export(vm: str, snapshot_name: str, export_path: str, incremental_parent: str | None):
    roots = ctx().backup.paths
    return task_accepted(
        snapshot_export.submit_export(cluster(), roots, vm, snapshot_name, export_path, incremental_parent)
    )


@group.route(
    "/vm/<vm>/snapshot/import",
    "POST",
    summary="Rebuild a VM that does not exist from its exports under a backup path (a task on the primary)",
    role=ADMIN,
    args=[
        Arg(
            "snapshot_name",
            required=True,
            help="the newest snapshot to import (its parents are imported first)",
        ),
        Arg("import_path", required=True, help="a directory under one of the cluster's backup.paths"),
        Arg("retain_snapshot", kind=bool, default=True, help="keep the imported snapshots as VM snapshots"),
    ],
    responses=TASK_RESPONSES,
)
def vm_snapshot_import(vm: str, snapshot_name: str, import_path: str, retain_snapshot: bool):
    roots = ctx().backup.paths
    return task_accepted(
        snapshot_export.submit_import(cluster(), roots, vm, snapshot_name, import_path, retain_snapshot)
    )
