"""Durable tasks: list, status, cancel; and the backup task."""

from __future__ import annotations

import re
import time

from flask import jsonify

from pvc import tasks
from pvc.api.context import ctx
from pvc.api.errors import ApiError
from pvc.api.routes import ADMIN, OPERATOR, Arg, RouteGroup
from pvc.cluster.errors import NotFoundError

group = RouteGroup("tasks")
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
BACKUP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _task(task_id: str) -> tasks.TaskRecord:
    if not TASK_ID.fullmatch(task_id):
        raise NotFoundError(f"Task '{task_id}' not found")
    context = ctx()
    # A task submitted a moment ago may not be in the cache yet: fall back to a fresh read.
    record = tasks.get(context.cache, task_id) or tasks.get(context.store, task_id)
    if record is None:
        raise NotFoundError(f"Task '{task_id}' not found")
    return record


@group.route("/tasks", summary="Tasks by worker: active, reserved, scheduled")
def list_tasks():
    cache = ctx().cache
    return jsonify(tasks.list_by_worker(cache, cache.node_names()))


@group.route(
    "/tasks/<task_id>", summary="A task's state and progress", responses={"200": "OK", "404": "Not found"}
)
def get_task(task_id: str):
    return jsonify(tasks.status_view(_task(task_id)))


@group.route("/tasks/<task_id>", "DELETE", summary="Cancel a task", role=OPERATOR)
def cancel_task(task_id: str):
    _task(task_id)
    record = tasks.request_cancel(ctx().store, task_id)
    return jsonify(message=f"Cancellation of task {task_id} requested (state {record.state})")


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
    primary = context.cache.cluster_config().primary_node
    if not context.cache.node(primary):
        raise ApiError("No primary coordinator is running to take the backup", 409)
    name = name or f"pvc-backup-{time.strftime('%Y%m%d-%H%M%S')}.json"
    if not BACKUP_NAME.fullmatch(name):
        raise ApiError("name must be a plain file name (letters, digits, '.', '_', '-'), not a path")
    target = str(context.state_dir / "backups" / name)
    try:
        record = tasks.submit(context.store, "cluster.backup", primary, {"path": target})
    except (tasks.InvalidTaskError, tasks.UnknownTaskError) as error:
        raise ApiError(str(error)) from None
    return jsonify(tasks.accepted_view(record)), 202
