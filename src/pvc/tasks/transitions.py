"""The allowed changes of a task record, as pure functions.

Each function takes the record as it is now and returns the record as it should be,
or None when the change does not apply (for example, progress for a task that has
already finished). :func:`pvc.tasks.control.update` applies them with a version
check and re-applies them to the fresh record after a lost race, so the rules here
are the whole state machine::

    PENDING --claim--> RUNNING --succeed--> SUCCESS
       |                  |  \\--fail/cancelled/lost--> FAILURE
       \\--cancel/fail--------------------------------> FAILURE

A finished record (SUCCESS or FAILURE) never changes again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pvc.tasks.records import (
    STATUS_CANCELLED,
    STATUS_COMPLETED,
    STATUS_RUNNING,
    STATUS_WORKER_LOST,
    TaskRecord,
    TaskState,
)


def claim(record: TaskRecord, worker: str, now: float) -> TaskRecord | None:
    """PENDING → RUNNING for ``worker``; None if not pending or already cancelled."""
    if not record.is_pending or record.cancel_requested:
        return None
    return replace(
        record, state=TaskState.RUNNING, worker=worker, started=now, current=0, status=STATUS_RUNNING
    )


def request_cancel(record: TaskRecord, now: float) -> TaskRecord | None:
    """A cancel request: a pending task finishes at once, a running one gets the flag."""
    if record.is_pending:
        return cancelled(replace(record, cancel_requested=True), now, "cancelled before it started")
    if record.is_running and not record.cancel_requested:
        return replace(record, cancel_requested=True)
    return None


def progress(record: TaskRecord, current: int, total: int, status: str) -> TaskRecord | None:
    """New progress figures for a running task."""
    if not record.is_running:
        return None
    if (record.current, record.total, record.status) == (current, total, status):
        return None
    return replace(record, current=current, total=total, status=status)


def succeed(record: TaskRecord, result: Any, now: float, *, current: int, total: int) -> TaskRecord | None:
    """RUNNING → SUCCESS with ``result``; the bar ends full.

    ``status`` becomes the result when the result is a string (or a mapping with a
    string ``message``), otherwise "Completed": it is what the CLI prints at the end.
    """
    if not record.is_running:
        return None
    return replace(
        record,
        state=TaskState.SUCCESS,
        result=result,
        current=max(current, total),
        total=total,
        status=success_status(result),
        finished=now,
    )


def success_status(result: Any) -> str:
    """The final status line of a successful task (see :func:`succeed`)."""
    if isinstance(result, str) and result:
        return result
    if isinstance(result, dict) and isinstance(result.get("message"), str) and result["message"]:
        return result["message"]
    return STATUS_COMPLETED


def fail(
    record: TaskRecord,
    error: str,
    now: float,
    *,
    status: str | None = None,
    current: int | None = None,
    total: int | None = None,
) -> TaskRecord | None:
    """Any unfinished state → FAILURE; ``status`` defaults to the error message."""
    if record.is_finished:
        return None
    return replace(
        record,
        state=TaskState.FAILURE,
        error=error,
        status=status if status is not None else error,
        result=None,
        current=record.current if current is None else current,
        total=record.total if total is None else total,
        finished=now,
    )


def cancelled(record: TaskRecord, now: float, reason: str, **figures: int) -> TaskRecord | None:
    """FAILURE with status "cancelled"; ``reason`` goes to ``error``."""
    return fail(record, reason, now, status=STATUS_CANCELLED, **figures)


def lost(record: TaskRecord, now: float, reason: str) -> TaskRecord | None:
    """RUNNING → FAILURE with status "worker lost" (its claim vanished with its session)."""
    if not record.is_running:
        return None
    return fail(record, reason, now, status=STATUS_WORKER_LOST)
