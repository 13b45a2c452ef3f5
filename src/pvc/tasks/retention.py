"""How long finished task records are kept, and their removal.

Finished records stay so that ``GET /tasks/{id}`` can answer after the fact. A record
goes once it is older than ``max_age`` (counted from when it finished) or once more
than ``keep`` newer finished records exist. PENDING and RUNNING records are never
pruned. Every node's worker pool prunes now and then; the deletions are idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pvc.state.errors import StateError
from pvc.state.store import Store
from pvc.tasks import control
from pvc.tasks.records import TaskRecord
from pvc.tasks.views import records as read_records

log = logging.getLogger(__name__)

WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Retention:
    """Keep at most ``keep`` finished records, none older than ``max_age`` seconds."""

    keep: int = 1000
    max_age: float = WEEK

    def __post_init__(self) -> None:
        if self.keep < 0 or self.max_age < 0:
            raise ValueError("retention limits cannot be negative")


def select_expired(tasks: Iterable[TaskRecord], retention: Retention, now: float) -> list[str]:
    """Ids of the finished records ``retention`` no longer keeps (pure)."""
    finished = [record for record in tasks if record.is_finished]
    finished.sort(key=lambda r: (r.finished or r.created, r.id), reverse=True)
    return [
        record.id
        for rank, record in enumerate(finished)
        if rank >= retention.keep or now - (record.finished or record.created) > retention.max_age
    ]


def prune(
    store: Store,
    retention: Retention = Retention(),
    *,
    now: float | None = None,
    tasks: Iterable[TaskRecord] | None = None,
) -> list[str]:
    """Delete the finished records ``retention`` no longer keeps; returns their ids.

    ``tasks`` lets a caller with a cache skip reading every record from ``store``.
    """
    stamp = time.time() if now is None else now
    expired = select_expired(read_records(store) if tasks is None else tasks, retention, stamp)
    removed = []
    for task_id in expired:
        try:
            control.delete(store, task_id)
        except StateError as error:  # a contender appeared under it meanwhile: next time
            log.debug("task %s not pruned: %s", task_id, error)
            continue
        removed.append(task_id)
    return removed
