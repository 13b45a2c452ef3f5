"""Errors raised by the task subsystem.

The domain library maps them to answers: InvalidTaskError to 400, TaskNotFoundError
to 404.
"""

from __future__ import annotations

from pvc.errors import PVCError


class TaskError(PVCError):
    """Base class of the task subsystem's deliberate errors."""


class InvalidTaskError(TaskError):
    """A submission was refused: bad run_on, bad arguments."""


class TaskNotFoundError(TaskError):
    """No record exists for the task id."""


class TaskCancelled(TaskError):
    """Raised inside a task (by TaskContext.check_cancelled) to stop after a cancel request."""
