"""Claiming a task: a kazoo ``Lock`` per task at ``/locks/tasks/<id>``.

Why a per-task Lock rather than kazoo's LockingQueue: tasks are addressed to one node
and must stay readable, cancellable and listable by id while they wait, run and after
they finish. LockingQueue consumes (deletes) its entries and hands out "the next
entry" of one queue, so it would need a queue per node plus a separate record store,
and cancelling a waiting entry would mean digging it out of the queue. With a Lock per
task the record *is* the queue entry, and the Lock gives exactly what claiming needs:

* exclusivity: only one contender holds it, across every process and node;
* session binding: the holder's znode is ephemeral, so a worker whose daemon dies (or
  whose session expires) drops its claim without anyone's help;
* observability: an empty lock directory for a RUNNING record means its worker is gone
  (``Lock.contenders()``, or the cache's view of ``/locks/tasks/<id>``).

The locks live under ``/locks`` rather than beside the records so that a cluster
backup (which skips ``/locks``) never turns an ephemeral claim into a persistent one.

A worker starts a task only while holding its claim, and only after re-reading the
record and finding it still PENDING (Ganeti's order: lock, check, act); it writes the
final state *before* releasing the claim. Hence: a task never runs twice, and a RUNNING
record whose claim is free was abandoned. Whoever then acquires that claim marks the
record FAILURE "worker lost" (see :func:`reap`).

Claims are taken with non-blocking acquires: a worker never queues behind another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.locks import Lease
from pvc.state.store import Store
from pvc.tasks import control, transitions
from pvc.tasks.records import TaskRecord

log = logging.getLogger(__name__)


class Claim:
    """The claim lock of one task (one attempt: make a new Claim to try again)."""

    def __init__(self, store: Store, task_id: str, identifier: str) -> None:
        self.task_id = task_id
        self.identifier = identifier
        self._lease = Lease(store, paths.task_claim(task_id), identifier)

    def try_take(self) -> bool:
        """Take the claim if nobody holds it; never waits for a holder."""
        return self._lease.try_acquire()

    @property
    def held(self) -> bool:
        return self._lease.held

    def release(self) -> None:
        """Give the claim up (best effort: a lost session has already released it)."""
        self._lease.release()


def reap(store: Store, task_id: str, identifier: str, reason: str) -> TaskRecord | None:
    """Mark a RUNNING task whose claim nobody holds as FAILURE "worker lost".

    Takes the claim first, so a live worker is never declared lost; returns the
    updated record, or None if the task was not abandoned after all.
    """
    claim = Claim(store, task_id, identifier)
    if not claim.try_take():
        return None
    try:
        record, written = control.update(
            store, task_id, lambda current: transitions.lost(current, time.time(), reason)
        )
    finally:
        claim.release()
    return record if written else None


def sweep(store: Store, orphans: Iterable[str]) -> list[str]:
    """Delete claim directories of tasks that no longer exist; returns their ids.

    ``orphans`` are candidates (say, from a cache): each is checked with a fresh read
    and deleted only while it has no contender (a non-recursive delete refuses then).
    They appear when a record is pruned while a contender was briefly in its claim.
    """
    removed = []
    for task_id in orphans:
        if store.exists(paths.task(task_id)):
            continue
        try:
            store.delete(paths.task_claim(task_id))
        except StateError:
            continue  # somebody is in it: not an orphan yet
        removed.append(task_id)
    return removed
