"""Tasks as clients see them: the ``/tasks`` views, cancelling, and the answer to a submission."""

from __future__ import annotations

import re
from typing import Any

from pvc import tasks
from pvc.cluster.errors import NotFoundError
from pvc.cluster.session import Cluster
from pvc.tasks import TaskRecord

__all__ = ["TaskRecord", "accepted", "cancel_task", "get_task", "list_tasks"]

TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def list_tasks(cluster: Cluster) -> dict[str, Any]:
    """``GET /tasks``: active, reserved and scheduled tasks by worker (every node listed)."""
    cache = cluster.cache
    return tasks.list_by_worker(cache, cache.node_names())


def _record(cluster: Cluster, task_id: str) -> TaskRecord:
    if not TASK_ID.fullmatch(task_id):
        raise NotFoundError(f"Task '{task_id}' not found")
    # A task submitted a moment ago may not be in the cache yet: fall back to a fresh read.
    record = tasks.get(cluster.cache, task_id) or tasks.get(cluster.store, task_id)
    if record is None:
        raise NotFoundError(f"Task '{task_id}' not found")
    return record


def get_task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    """``GET /tasks/{id}``: state, progress and, once finished, the result; NotFoundError if unknown."""
    return tasks.status_view(_record(cluster, task_id))


def cancel_task(cluster: Cluster, task_id: str) -> str:
    """Ask for a task to stop; returns the reply message (NotFoundError if unknown)."""
    _record(cluster, task_id)
    record = tasks.request_cancel(cluster.store, task_id)
    return f"Cancellation of task {task_id} requested (state {record.state})"


def accepted(record: TaskRecord) -> dict[str, str]:
    """The body of the 202 answer to a request that queued ``record``."""
    return tasks.accepted_view(record)
