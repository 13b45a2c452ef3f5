"""Running one task function and turning how it ended into a record change.

The worker pool calls :func:`outcome` in a worker thread and writes the change it
returns with :func:`pvc.tasks.control.update`:

* the function returns → SUCCESS with the result (which must be JSON-able);
* it raises → FAILURE, the exception's message as ``error`` and ``status``;
* it raises TaskCancelled, or it saw ``ctx.cancelled`` (whatever it then did) →
  FAILURE with status "cancelled";
* its worker lost the claim meanwhile → FAILURE "worker lost" (decided by the pool).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pvc.state.records import encode
from pvc.tasks import transitions
from pvc.tasks.claims import Claim
from pvc.tasks.context import TaskContext
from pvc.tasks.errors import TaskCancelled
from pvc.tasks.records import STATUS_CANCELLED, TaskRecord
from pvc.tasks.registry import TaskType

log = logging.getLogger("pvc.tasks")

#: A change of a task record (see pvc.tasks.transitions).
Change = Callable[[TaskRecord], TaskRecord | None]


@dataclass(eq=False)
class Run:
    """A task a worker pool is running: its record at start, claim and context."""

    record: TaskRecord
    claim: Claim
    ctx: TaskContext
    claim_lost: bool = False  # the pool's session ended: the claim is gone, the run is void
    abandoned: bool = False  # the pool stopped waiting for it and finished the record itself
    done: threading.Event = field(default_factory=threading.Event)


def outcome(run: Run, task_type: TaskType) -> Change:
    """Call the task function; return the change that records how it ended."""
    ctx = run.ctx
    try:
        result = task_type(ctx, **run.record.args)
    except TaskCancelled as cancel:
        return cancelled(ctx, str(cancel))
    except Exception as error:
        if ctx.saw_cancel:
            return cancelled(ctx)
        log.warning("task %s (%s) failed: %s", run.record.id, run.record.name, error, exc_info=True)
        return failed(ctx, str(error) or type(error).__name__)
    if ctx.saw_cancel:
        return cancelled(ctx)
    try:
        encode(result)
    except (TypeError, ValueError) as error:
        return failed(ctx, f"the task's result cannot be stored as JSON: {error}")
    return succeeded(ctx, result)


def succeeded(ctx: TaskContext, result: object) -> Change:
    current, total, _ = ctx.close()
    return lambda r: transitions.succeed(r, result, time.time(), current=current, total=total)


def failed(ctx: TaskContext, message: str) -> Change:
    current, total, _ = ctx.close()
    return lambda r: transitions.fail(r, message, time.time(), current=current, total=total)


def cancelled(ctx: TaskContext, reason: str = "") -> Change:
    current, total, _ = ctx.close()
    reason = reason or ctx.cancel_reason or STATUS_CANCELLED
    return lambda r: transitions.cancelled(r, time.time(), reason, current=current, total=total)


def lost(reason: str) -> Change:
    return lambda r: transitions.lost(r, time.time(), reason)
