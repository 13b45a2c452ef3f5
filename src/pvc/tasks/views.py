"""Reading task records and shaping them as the PVC v1 API answers.

Every reader takes a *source*: a :class:`~pvc.state.store.Store` (fresh reads, one
round trip per record) or a :class:`~pvc.state.cache.ClusterCache` built with
``paths.TASKS`` among its roots (reads from memory; what the API should use).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.store import Store
from pvc.tasks.records import TaskRecord, TaskState, valid_task_id, worker_name

Source = Store | ClusterCache


def _data(source: Source, path: str) -> bytes | None:
    if isinstance(source, ClusterCache):
        try:
            return source.data(path)
        except KeyError as error:
            raise ValueError(f"the cache does not hold {paths.TASKS}; add it to its roots") from error
    return source.get(path)


def get(source: Source, task_id: str) -> TaskRecord | None:
    """The record of task ``task_id``, or None if there is none."""
    if not valid_task_id(task_id):
        return None
    return TaskRecord.from_bytes(_data(source, paths.task(task_id)))


def records(source: Source) -> list[TaskRecord]:
    """Every readable task record, oldest first."""
    if isinstance(source, ClusterCache):
        _data(source, paths.TASKS)  # fails clearly when /tasks is not cached
    found = (get(source, task_id) for task_id in source.children(paths.TASKS))
    return sorted((record for record in found if record is not None), key=lambda r: (r.created, r.id))


def accepted_view(record: TaskRecord) -> dict[str, str]:
    """Body of the 202 answer to a submission: ``{task_id, task_name, run_on}``."""
    return {"task_id": record.id, "task_name": record.name, "run_on": record.run_on}


def status_view(record: TaskRecord) -> dict[str, Any]:
    """Body of ``GET /tasks/{id}``: state, current, total, status, and result once finished."""
    view: dict[str, Any] = {
        "state": record.state,
        "current": record.current,
        "total": record.total,
        "status": record.status,
    }
    if record.is_finished:
        view["result"] = record.result
    return view


#: Task arguments that are secrets (another cluster's API key): listings show them hidden.
HIDDEN_ARGUMENTS = frozenset({"destination_api_key"})


def summary(record: TaskRecord) -> dict[str, Any]:
    """One task in ``GET /tasks``: Celery's keys (id, name, args, kwargs, hostname,
    time_start) plus ours (run_on, worker, state, progress, times)."""
    return {
        "id": record.id,
        "name": record.name,
        "args": [],
        "kwargs": {
            key: "(hidden)" if key in HIDDEN_ARGUMENTS else value for key, value in record.args.items()
        },
        "run_on": record.run_on,
        "worker": worker_name(record.run_on),
        "hostname": worker_name(record.run_on),
        "state": record.state,
        "current": record.current,
        "total": record.total,
        "status": record.status,
        "created": record.created,
        "time_start": record.started,
        "started": record.started,
        "cancel_requested": record.cancel_requested,
    }


def group_by_worker(
    tasks: Iterable[TaskRecord], nodes: Iterable[str] = ()
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The ``GET /tasks`` shape from records: ``{active, reserved, scheduled}``.

    Each value maps ``pvcworker@<node>`` to a list of summaries: *active* holds RUNNING
    tasks, *reserved* PENDING tasks waiting for that node's workers, *scheduled* stays
    empty (PVC has no timed tasks). Finished tasks are not listed (``GET /tasks/{id}``
    still answers for them). Every node in ``nodes`` gets a key even when idle.
    """
    shape: dict[str, dict[str, list[dict[str, Any]]]] = {"active": {}, "reserved": {}, "scheduled": {}}
    for node in nodes:
        for group in shape.values():
            group.setdefault(worker_name(node), [])
    for record in tasks:
        if record.state == TaskState.RUNNING:
            group = shape["active"]
        elif record.state == TaskState.PENDING:
            group = shape["reserved"]
        else:
            continue
        group.setdefault(worker_name(record.run_on), []).append(summary(record))
    return shape


def list_by_worker(source: Source, nodes: Iterable[str] = ()) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Body of ``GET /tasks`` read from ``source`` (see :func:`group_by_worker`)."""
    return group_by_worker(records(source), nodes)
