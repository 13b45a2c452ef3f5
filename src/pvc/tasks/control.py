"""Writing task records: submit, compare-and-set updates, cancel requests.

These are the calls the API makes for task submission and cancellation; the worker
pool uses :func:`update` for every change it makes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pvc.state import paths
from pvc.state.errors import ConflictError, StateError
from pvc.state.store import Commit, Store, Transaction
from pvc.tasks import transitions
from pvc.tasks.errors import InvalidTaskError, TaskNotFoundError
from pvc.tasks.records import TaskRecord, valid_task_id
from pvc.tasks.registry import TaskType

#: How often :func:`update` re-reads and re-applies a change after losing a race.
UPDATE_ATTEMPTS = 50

#: How many fresh ids :func:`submit` tries if one is taken (8 hex digits rarely collide).
ID_ATTEMPTS = 5

Change = Callable[[TaskRecord], TaskRecord | None]
#: Called with each write's Commit; the domain library passes Cluster.settle, so that its
#: callers read their own writes.
Settle = Callable[[Commit], object]


def _ignore(_commit: Commit) -> None:
    return None


def new_task_id() -> str:
    """A task id as PVC v1 makes them: the first 8 hex digits of a uuid4."""
    return uuid.uuid4().hex[:8]


def submit(
    store: Store,
    kind: TaskType,
    run_on: str,
    args: Mapping[str, Any] | None = None,
    *,
    now: float | None = None,
    settle: Settle = _ignore,
) -> TaskRecord:
    """Queue a task of type ``kind`` to run on node ``run_on`` with keyword arguments ``args``.

    Validates before writing anything: ``run_on`` must be a non-empty node name and
    ``args`` fit the task function. The record (state PENDING) is created in one
    transaction (its claim lock is made by the worker that claims it). Raises
    InvalidTaskError (400 to the API) and StateError on ZooKeeper trouble.
    """
    name = kind.name
    if not isinstance(run_on, str) or not run_on.strip() or "/" in run_on:
        raise InvalidTaskError(f"task '{name}': run_on must name a node, not {run_on!r}")
    cleaned = kind.check_arguments(args)
    record = TaskRecord(id="", name=name, run_on=run_on.strip(), args=cleaned)
    try:
        record.to_bytes()
    except (TypeError, ValueError) as error:
        raise InvalidTaskError(f"task '{name}': arguments are not JSON: {error}") from error
    created = time.time() if now is None else now
    for _ in range(ID_ATTEMPTS):
        candidate = TaskRecord(**{**record.to_dict(), "id": new_task_id(), "created": created})
        txn = Transaction()
        txn.create(paths.task(candidate.id), candidate.to_bytes())
        try:
            commit = store.commit(txn)
        except ConflictError:
            if not store.exists(paths.TASKS):
                raise StateError(f"{paths.TASKS} does not exist: the cluster schema is not set up") from None
            continue  # the id is taken: draw another
        settle(commit)
        return candidate
    raise StateError(f"could not find a free task id in {ID_ATTEMPTS} attempts")


def read(store: Store, task_id: str) -> tuple[TaskRecord, int] | None:
    """A fresh read of a record and its znode version; None if absent or unreadable."""
    if not valid_task_id(task_id):
        return None
    data, version = store.get_versioned(paths.task(task_id))
    record = TaskRecord.from_bytes(data)
    if record is None:
        return None
    return record, version


def update(
    store: Store, task_id: str, change: Change, *, attempts: int = UPDATE_ATTEMPTS, settle: Settle = _ignore
) -> tuple[TaskRecord | None, bool]:
    """Apply ``change`` to the record with a version check, retrying on a lost race.

    ``change`` gets the current record and returns the new one, or None to leave it as
    it is. Returns ``(record, written)``: the record as it now stands (None if it does
    not exist) and whether this call changed it.
    """
    for _ in range(attempts):
        found = read(store, task_id)
        if found is None:
            return None, False
        record, version = found
        changed = change(record)
        if changed is None or changed == record:
            return record, False
        txn = Transaction()
        txn.set(paths.task(task_id), changed.to_bytes(), version=version)
        try:
            commit = store.commit(txn)
        except ConflictError:
            continue  # someone else wrote in between: look again
        settle(commit)
        return changed, True
    raise StateError(f"task {task_id} kept changing; gave up after {attempts} attempts")


def request_cancel(
    store: Store, task_id: str, *, now: float | None = None, settle: Settle = _ignore
) -> TaskRecord:
    """Ask for a task to stop; returns the record after the request.

    A PENDING task becomes FAILURE (status "cancelled") at once and will never start; a
    RUNNING task gets ``cancel_requested`` and its worker tells the function through
    ``ctx.cancelled``; a finished task is left as it is. Raises TaskNotFoundError.
    """
    stamp = time.time() if now is None else now
    record, _ = update(
        store, task_id, lambda current: transitions.request_cancel(current, stamp), settle=settle
    )
    if record is None:
        raise TaskNotFoundError(f"no task {task_id}")
    return record


def delete(store: Store, task_id: str) -> None:
    """Remove a task's record, then its claim lock's directory (missing is fine).

    A claim directory that is not empty stays; :func:`pvc.tasks.claims.sweep` removes
    it once it is.
    """
    if not valid_task_id(task_id):
        return
    store.delete(paths.task(task_id), recursive=True)
    with contextlib.suppress(StateError):  # a contender is in it right now
        store.delete(paths.task_claim(task_id))
