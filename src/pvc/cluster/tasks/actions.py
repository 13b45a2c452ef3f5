"""Queueing and cancelling tasks, as the domain library does it: every write settles in the cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pvc import tasks
from pvc.cluster.session import Cluster
from pvc.cluster.tasks.queries import task_record


def submit(cluster: Cluster, kind: tasks.TaskType, node: str, args: Mapping[str, Any]) -> tasks.TaskRecord:
    """Queue a task of type ``kind`` on ``node``; returns once the cache lists it.

    InvalidTaskError (400 to clients) when the arguments do not fit the type.
    """
    return tasks.submit(cluster.store, kind, node, args, settle=cluster.settle)


def cancel_task(cluster: Cluster, task_id: str) -> str:
    """Ask for a task to stop; returns the reply message (NotFoundError if unknown)."""
    task_record(cluster, task_id)
    record = tasks.request_cancel(cluster.store, task_id, settle=cluster.settle)
    return f"Cancellation of task {task_id} requested (state {record.state})"
