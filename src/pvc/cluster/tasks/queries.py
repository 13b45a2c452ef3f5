"""Tasks as clients see them: the ``/tasks`` views and the answer to a submission (from the cache)."""

from __future__ import annotations

import re
from typing import Any

from pvc import tasks
from pvc.cluster.errors import NotFoundError
from pvc.cluster.session import Cluster
from pvc.state import paths
from pvc.tasks import TaskRecord
from pvc.tasks.records import FINISHED_STATES

__all__ = ["TaskRecord", "accepted", "get_task", "list_tasks", "succeeded", "task_record", "wait_finished"]

TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def list_tasks(cluster: Cluster) -> dict[str, Any]:
    """``GET /tasks``: active, reserved and scheduled tasks by worker (every node listed)."""
    cache = cluster.cache
    return tasks.list_by_worker(cache, cache.node_names())


def task_record(cluster: Cluster, task_id: str) -> TaskRecord:
    """One task's record; NotFoundError if there is none (or ``task_id`` cannot be one)."""
    record = tasks.get(cluster.cache, task_id) if TASK_ID.fullmatch(task_id) else None
    if record is None:
        raise NotFoundError(f"Task '{task_id}' not found")
    return record


def get_task(cluster: Cluster, task_id: str) -> dict[str, Any]:
    """``GET /tasks/{id}``: state, progress and, once finished, the result; NotFoundError if unknown."""
    return tasks.status_view(task_record(cluster, task_id))


def accepted(record: TaskRecord) -> dict[str, str]:
    """The body of the 202 answer to a request that queued ``record``."""
    return tasks.accepted_view(record)


def wait_finished(cluster: Cluster, task_id: str, timeout: float) -> TaskRecord | None:
    """The task's record once it has finished, or None if it has not within ``timeout`` s."""

    def finished() -> TaskRecord | None:
        record = tasks.get(cluster.cache, task_id)
        return record if record is not None and record.state in FINISHED_STATES else None

    return cluster.cache.wait_until(finished, timeout, under=paths.task(task_id))


def succeeded(record: TaskRecord) -> bool:
    """Whether a finished task ended in SUCCESS."""
    return record.state == tasks.TaskState.SUCCESS
