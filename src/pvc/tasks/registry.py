"""Task types and the registry a node daemon runs them from.

A task type is a function ``fn(ctx, **args)`` with a name, made with the
:func:`task_type` decorator where the function is written::

    from pvc.tasks import TaskContext, task_type

    @task_type("cluster.backup", validate=check_path)
    def backup(ctx: TaskContext, *, path: str) -> dict:
        ...
        ctx.progress(1, 3, "dumping /config")
        ...
        return {"message": "backup written", "path": path}

Whoever submits a task hands the :class:`TaskType` itself to
:func:`pvc.tasks.control.submit`, which checks the arguments against the function's
signature and the optional ``validate(args)`` callable before anything is written
(``validate`` raises InvalidTaskError or returns cleaned arguments) — the Ganeti order:
check arguments at the edge, then lock, check preconditions, act, report.

The daemon that runs tasks builds a :class:`TaskRegistry` of the types it offers and
gives it to its :class:`~pvc.tasks.workers.TaskWorkers`; nothing is registered globally
and nothing is looked up by module name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvc.tasks.errors import InvalidTaskError

if TYPE_CHECKING:
    from pvc.tasks.context import TaskContext
    from pvc.tasks.records import TaskRecord

TaskFunction = Callable[..., Any]
Validator = Callable[[dict[str, Any]], dict[str, Any] | None]
#: ``on_lost(services, record)``: cleans up after a run whose worker was lost (see
#: :func:`task_type`); returns a sentence for the task's error, or None.
LostHandler = Callable[[Any, "TaskRecord"], str | None]


@dataclass(frozen=True)
class TaskType:
    """A kind of task: its name, its function, how its arguments are checked and what
    cleans up after a run whose worker was lost."""

    name: str
    function: TaskFunction
    validate: Validator | None = None
    on_lost: LostHandler | None = None

    def __call__(self, ctx: TaskContext, /, **args: Any) -> Any:
        """Run the function (the worker pool calls this in a worker thread)."""
        return self.function(ctx, **args)

    def check_arguments(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """The submission's arguments, checked (and possibly cleaned) for this type.

        InvalidTaskError when they do not fit the function's signature or its validator.
        """
        if args is None:
            args = {}
        if not isinstance(args, Mapping) or not all(isinstance(key, str) for key in args):
            raise InvalidTaskError(f"task '{self.name}': arguments must be a mapping of names to values")
        cleaned = dict(args)
        try:
            inspect.signature(self.function).bind(None, **cleaned)
        except TypeError as error:
            raise InvalidTaskError(f"task '{self.name}': {error}") from error
        if self.validate is not None:
            replaced = self.validate(cleaned)
            if replaced is not None:
                cleaned = replaced
        return cleaned


def task_type(
    name: str, *, validate: Validator | None = None, on_lost: LostHandler | None = None
) -> Callable[[TaskFunction], TaskType]:
    """Decorator: make ``fn(ctx, **args)`` the task type ``name``.

    ``on_lost(services, record)`` runs on the node whose worker pool finds a run of this
    type abandoned (its worker's node died or lost its session) and marks it FAILURE
    "worker lost": the run could not undo what it did, so this does, from what the record
    and the cluster say. What it returns is added to the task's error.
    """
    if not name or not isinstance(name, str):
        raise ValueError("a task type needs a non-empty name")

    def make(function: TaskFunction) -> TaskType:
        return TaskType(name, function, validate, on_lost)

    return make


class TaskRegistry:
    """The task types one daemon runs, by name."""

    def __init__(self, types: Iterable[TaskType] = ()) -> None:
        self._types: dict[str, TaskType] = {}
        for kind in types:
            self.add(kind)

    def add(self, kind: TaskType) -> None:
        """Offer ``kind``; ValueError if another type already has its name."""
        existing = self._types.get(kind.name)
        if existing is not None and existing != kind:
            owner = _qualname(existing.function)
            raise ValueError(f"task type '{kind.name}' is already registered by {owner}")
        self._types[kind.name] = kind

    def lookup(self, name: str) -> TaskType | None:
        """The type called ``name``, or None when this daemon does not run it."""
        return self._types.get(name)

    def names(self) -> list[str]:
        """Names of every type offered."""
        return sorted(self._types)


def _qualname(function: TaskFunction) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"
