"""Durable tasks: long work queued in ZooKeeper and run by a node's worker pool.

Layout in ZooKeeper (paths in :mod:`pvc.state.paths`)::

    /tasks/<id>          the task record (JSON, see TaskRecord), changed only by
                         version-checked writes
    /locks/tasks/<id>    the kazoo Lock its worker holds while running it
                         (ephemeral contenders; see pvc.tasks.claims)

What the domain library calls (the API reaches tasks only through it):

* ``submit(store, kind, run_on, args) -> TaskRecord`` and ``accepted_view(record)``
  for the 202 body ``{task_id, task_name, run_on}``;
* ``get(source, task_id)`` and ``status_view(record)`` for ``GET /tasks/{id}``;
* ``list_by_worker(source, nodes)`` for ``GET /tasks``;
* ``request_cancel(store, task_id)`` to cancel.

``source`` is a Store or a ClusterCache whose roots include ``paths.TASKS``.

Defining a task type: decorate ``fn(ctx: TaskContext, **args)`` with
``@task_type("group.name")``; the daemon that runs it puts it in the
:class:`TaskRegistry` it gives its :class:`TaskWorkers` (see :mod:`pvc.tasks.registry`).
"""

from __future__ import annotations

from pvc.tasks.context import TaskContext
from pvc.tasks.control import new_task_id, request_cancel, submit, update
from pvc.tasks.errors import (
    InvalidTaskError,
    TaskCancelled,
    TaskError,
    TaskNotFoundError,
)
from pvc.tasks.records import TaskRecord, TaskState, worker_name
from pvc.tasks.registry import TaskRegistry, TaskType, task_type
from pvc.tasks.retention import Retention, prune
from pvc.tasks.views import accepted_view, get, group_by_worker, list_by_worker, status_view, summary
from pvc.tasks.workers import TaskWorkers

__all__ = [
    "InvalidTaskError",
    "Retention",
    "TaskCancelled",
    "TaskContext",
    "TaskError",
    "TaskNotFoundError",
    "TaskRecord",
    "TaskRegistry",
    "TaskState",
    "TaskType",
    "TaskWorkers",
    "accepted_view",
    "get",
    "group_by_worker",
    "list_by_worker",
    "new_task_id",
    "prune",
    "request_cancel",
    "status_view",
    "submit",
    "summary",
    "task_type",
    "update",
    "worker_name",
]
