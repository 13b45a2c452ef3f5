"""Durable tasks: list, status, cancel; and the backup task."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster, ctx
from pvc.api.replies import task_accepted
from pvc.api.routes import ADMIN, OPERATOR, Arg, RouteGroup
from pvc.cluster import backup
from pvc.cluster.tasks import actions, queries

group = RouteGroup("tasks")


@group.route("/tasks", summary="Tasks by worker: active, reserved, scheduled")
def list_tasks():
    return jsonify(queries.list_tasks(cluster()))


@group.route(
    "/tasks/<task_id>", summary="A task's state and progress", responses={"200": "OK", "404": "Not found"}
)
def get_task(task_id: str):
    return jsonify(queries.get_task(cluster(), task_id))


@group.route("/tasks/<task_id>", "DELETE", summary="Cancel a task", role=OPERATOR)
def cancel_task(task_id: str):
    return jsonify(message=actions.cancel_task(cluster(), task_id))


@group.route(
    "/backup",
    "POST",
    summary="Write a cluster state backup file on the primary (a task)",
    role=ADMIN,
    responses={"202": "Accepted"},
    args=[Arg("name", help="file name in the primary's <state_dir>/backups; default timestamped")],
)
def backup_task(name: str | None):
    context = ctx()
    record = backup.submit_backup(context.cluster, context.state_dir, name)
    return task_accepted(record)
