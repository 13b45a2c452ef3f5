"""The task record kept at ``/tasks/<id>`` and the names of its states.

One znode holds the whole record as JSON. Every change is a compare-and-set on the
znode's version (see :func:`pvc.tasks.control.update`), so the submitter, the worker,
a canceller and a reaper can never overwrite each other's writes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Self

from pvc.state.records import decode_json, encode

#: Prefix of worker names, as Celery spelled them in PVC v1 (``pvcworker@<node>``).
WORKER_PREFIX = "pvcworker@"

#: What a task id may look like (ours are 8 hex digits; this only keeps paths safe).
TASK_ID_PATTERN = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


class TaskState(StrEnum):
    """Life of a task, with the PVC v1 (Celery) state names."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


#: Every state name, as stored.
ALL_STATES = frozenset(state.value for state in TaskState)

#: States after which a record never changes again.
FINISHED_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILURE})

#: ``status`` values with a fixed meaning.
STATUS_PENDING = "Pending job start"
STATUS_RUNNING = "Running"
STATUS_COMPLETED = "Completed"
STATUS_CANCELLED = "cancelled"
STATUS_WORKER_LOST = "worker lost"


def worker_name(node: str) -> str:
    """The worker name of a node's task pool: ``pvcworker@<node>``."""
    return f"{WORKER_PREFIX}{node}"


def valid_task_id(task_id: str) -> bool:
    """Whether ``task_id`` can name a task znode (guards paths built from user input)."""
    return bool(TASK_ID_PATTERN.match(task_id))


@dataclass(frozen=True)
class TaskRecord:
    """One task: what to run, where, and how far it got.

    ``args`` are the keyword arguments of the task function (a JSON object).
    ``current``/``total``/``status`` are the progress the CLI draws; ``result`` is the
    function's JSON-able return value (SUCCESS only); ``error`` is the failure message.
    Times are UNIX timestamps; ``worker`` is the pool that claimed it.
    """

    id: str
    name: str
    run_on: str
    args: dict[str, Any] = field(default_factory=dict)
    state: str = TaskState.PENDING
    current: int = 0
    total: int = 1
    status: str = STATUS_PENDING
    result: Any = None
    error: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    worker: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def is_running(self) -> bool:
        return self.state == TaskState.RUNNING

    @property
    def is_pending(self) -> bool:
        return self.state == TaskState.PENDING

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        return encode(self.to_dict())

    @classmethod
    def from_mapping(cls, mapping: Any) -> Self | None:
        """Build a record from parsed JSON; unknown keys are ignored, bad data gives None."""
        if not isinstance(mapping, dict):
            return None
        known = {f.name for f in fields(cls)}
        try:
            record = cls(**{key: value for key, value in mapping.items() if key in known})
        except TypeError:
            return None
        if not isinstance(record.args, dict) or record.state not in ALL_STATES:
            return None
        return record

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Self | None:
        return cls.from_mapping(decode_json(data))
