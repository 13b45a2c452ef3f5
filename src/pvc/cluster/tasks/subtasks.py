"""A task that runs a step as another task (on another node) and waits for it.

A VM backup, for example, runs on the primary but takes its snapshot on the node that runs
the VM: it queues ``vm.create_snapshot`` there and waits. Cancelling the outer task asks the
inner one to stop too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pvc import tasks
from pvc.tasks import TaskContext, TaskError, TaskRecord, TaskState, TaskType
from pvc.tasks.control import read
from pvc.tasks.records import FINISHED_STATES

#: Seconds between looks at the inner task's record.
POLL = 0.25


def run_subtask(
    ctx: TaskContext, kind: TaskType, node: str, args: Mapping[str, Any], *, timeout: float
) -> TaskRecord:
    """Queue ``kind`` on ``node`` and wait until it ends; its record if it succeeded.

    TaskError with the inner task's error when it fails, or when it has not ended after
    ``timeout`` seconds (it is asked to stop then); TaskCancelled when the outer task is.
    """
    assert ctx.store is not None
    record = tasks.submit(ctx.store, kind, node, args)
    deadline = time.monotonic() + timeout
    while True:
        found = read(ctx.store, record.id)
        if found is None:
            raise TaskError(f"{kind.name} on {node} (task {record.id}) vanished")
        current = found[0]
        if current.state in FINISHED_STATES:
            break
        if ctx.cancelled or time.monotonic() > deadline:
            tasks.request_cancel(ctx.store, record.id)
            ctx.check_cancelled()
            raise TaskError(f"{kind.name} on {node} (task {record.id}) did not end within {timeout:g} s")
        time.sleep(POLL)
    if current.state != TaskState.SUCCESS:
        raise TaskError(f"{kind.name} on {node} failed: {current.error or current.status}")
    return current
