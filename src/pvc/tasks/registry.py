"""The registry of task types: a name → a function ``fn(ctx, **args)``.

Registering a task type::

    from pvc.tasks import TaskContext, task

    @task("cluster.backup")
    def backup(ctx: TaskContext, *, target: str) -> dict:
        ...
        ctx.progress(1, 3, "dumping /config")
        ...
        return {"message": "backup written", "path": target}

and name the defining module in :data:`TASK_MODULES`, so that both the API (which
validates names at submission) and every node daemon (which runs them) import it.

Arguments are checked at submission against the function's signature, and by the
optional ``validate(args)`` callable given to :func:`task`, which raises
InvalidTaskError (or returns cleaned arguments) — the Ganeti order: check arguments at
the edge, then lock, check preconditions, act, report.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pvc.tasks.errors import InvalidTaskError, UnknownTaskError

if TYPE_CHECKING:
    from pvc.tasks.context import TaskContext

log = logging.getLogger(__name__)

TaskFunction = Callable[..., Any]
Validator = Callable[[dict[str, Any]], dict[str, Any] | None]

#: Modules whose import registers task types. Add the module that defines a new task
#: type here (e.g. "pvc.cluster.backup" for the cluster backup task).
TASK_MODULES: list[str] = [
    "pvc.tasks.builtin",
    "pvc.cluster.tasks",
    "pvc.cluster.vm_devices",
    "pvc.cluster.vm_locks",
    "pvc.cluster.storage_tasks",
    "pvc.cluster.storage_benchmark",
]


@dataclass(frozen=True)
class TaskType:
    """A registered task type."""

    name: str
    function: TaskFunction
    validate: Validator | None = None

    def __call__(self, ctx: TaskContext, args: Mapping[str, Any]) -> Any:
        return self.function(ctx, **args)


_REGISTRY: dict[str, TaskType] = {}


def task(name: str, *, validate: Validator | None = None) -> Callable[[TaskFunction], TaskFunction]:
    """Decorator: register ``fn(ctx, **args)`` as the task type ``name``."""

    def register(function: TaskFunction) -> TaskFunction:
        add(name, function, validate=validate)
        return function

    return register


def add(name: str, function: TaskFunction, *, validate: Validator | None = None) -> TaskType:
    """Register ``function`` under ``name`` (re-registering the same function is allowed)."""
    if not name or not isinstance(name, str):
        raise ValueError("a task type needs a non-empty name")
    existing = _REGISTRY.get(name)
    if existing is not None and _qualname(existing.function) != _qualname(function):
        raise ValueError(f"task type '{name}' is already registered by {_qualname(existing.function)}")
    task_type = TaskType(name, function, validate)
    _REGISTRY[name] = task_type
    return task_type


def remove(name: str) -> None:
    """Forget a task type (tests only)."""
    _REGISTRY.pop(name, None)


def load_task_modules(*, strict: bool = True) -> list[str]:
    """Import every module of :data:`TASK_MODULES` (cheap after the first call).

    Returns the modules that failed to import; with ``strict`` the first failure is
    raised instead. A node daemon loads leniently: a broken task module must not stop
    it from running VMs, and tasks of the missing types fail with a clear message.
    """
    failed = []
    for module in TASK_MODULES:
        try:
            importlib.import_module(module)
        except Exception:
            if strict:
                raise
            log.exception("could not import task module %s", module)
            failed.append(module)
    return failed


def lookup(name: str) -> TaskType | None:
    """The task type registered as ``name``, or None (modules must be loaded first)."""
    return _REGISTRY.get(name)


def names() -> list[str]:
    """Names of every registered task type."""
    load_task_modules()
    return sorted(_REGISTRY)


def check_arguments(name: str, args: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a submission's arguments; returns them (possibly cleaned) as a dict.

    Raises UnknownTaskError for an unregistered name and InvalidTaskError when the
    arguments do not fit the function's signature or its validator.
    """
    load_task_modules()
    task_type = lookup(name)
    if task_type is None:
        raise UnknownTaskError(f"unknown task type '{name}'")
    if args is None:
        args = {}
    if not isinstance(args, Mapping) or not all(isinstance(key, str) for key in args):
        raise InvalidTaskError(f"task '{name}': arguments must be a mapping of names to values")
    cleaned = dict(args)
    try:
        inspect.signature(task_type.function).bind(None, **cleaned)
    except TypeError as error:
        raise InvalidTaskError(f"task '{name}': {error}") from error
    if task_type.validate is not None:
        replaced = task_type.validate(cleaned)
        if replaced is not None:
            cleaned = replaced
    return cleaned


def _qualname(function: TaskFunction) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"
