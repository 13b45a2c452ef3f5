"""VM snapshots: take, remove, roll back (tasks) and list."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster
from pvc.api.replies import task_accepted
from pvc.api.routes import OK_404, OPERATOR, Arg, RouteGroup
from pvc.cluster.vm import snapshot_tasks, snapshots

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
