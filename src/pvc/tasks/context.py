"""What a running task sees: its arguments, the store, progress and the cancel flag."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from pvc.state.store import Store
from pvc.tasks.errors import TaskCancelled
from pvc.tasks.records import TaskRecord

log = logging.getLogger(__name__)

#: ``write(current, total, status)``: persists progress figures (the worker pool passes
#: one that updates the task record in ZooKeeper).
ProgressWriter = Callable[[int, int, str], None]

#: Seconds between two progress writes: at most five per second.
PROGRESS_INTERVAL = 0.2

#: What the daemon running the task offers it (see :attr:`TaskContext.services`).
S = TypeVar("S")


class TaskContext(Generic[S]):
    """The first argument of every task function.

    * :meth:`progress` reports ``current`` of ``total`` with a ``status`` line. Writes
      to ZooKeeper are throttled to one per :data:`PROGRESS_INTERVAL`; a report made
      sooner is not lost, it is written when the interval ends (the latest figures win).
    * :attr:`cancelled` is true once a cancel was requested (``request_cancel``), the
      node daemon is stopping, or the worker lost its ZooKeeper session. The worker
      pool keeps it current from its watch on ``/tasks``; reading it costs nothing.
      A task should stop soon after it turns true, either by raising through
      :meth:`check_cancelled` or by returning: a task that *saw* the flag ends as
      FAILURE with status "cancelled" whatever it returns.
    * :meth:`sleep` waits but wakes early on cancellation.
    * :attr:`store` is the node daemon's ZooKeeper store, for the task's own work.
    * :attr:`services` is what the daemon offers its tasks beyond the store, as one typed
      object the daemon chose (the node daemon gives
      :class:`pvc.cluster.tasks.services.NodeServices`: its libvirt connection, Ceph client...).
    """

    def __init__(
        self,
        record: TaskRecord,
        store: Store | None,
        write: ProgressWriter,
        *,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        services: S | None = None,
    ) -> None:
        self.task_id = record.id
        self.name = record.name
        self.run_on = record.run_on
        self.args = dict(record.args)
        self.store = store
        self.services = services
        self.current = record.current
        self.total = record.total
        self.status = record.status
        self.cancel_reason = ""
        self.saw_cancel = False
        self._write = write
        self._interval = interval
        self._clock = clock
        self._cancel = threading.Event()
        self._lock = threading.Lock()  # guards the figures and the timer
        self._write_lock = threading.Lock()  # one write at a time, always of the latest figures
        self._last_write = -math.inf
        self._timer: threading.Timer | None = None
        self._closed = False

    # -- progress -------------------------------------------------------------------------

    def progress(self, current: int, total: int | None = None, status: str | None = None) -> None:
        """Report progress; ``total`` and ``status`` keep their last values when omitted."""
        with self._lock:
            if self._closed:
                return
            self.current = int(current)
            if total is not None:
                self.total = int(total)
            if status is not None:
                self.status = str(status)
            wait = self._last_write + self._interval - self._clock()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush_later)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last_write = self._clock()
        self._flush()

    def _flush_later(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed:
                return
            self._last_write = self._clock()
        self._flush()

    def _flush(self) -> None:
        with self._write_lock:
            with self._lock:
                if self._closed:
                    return
                figures = (self.current, self.total, self.status)
            try:
                self._write(*figures)
            except Exception as error:  # progress is best effort; the final write is not
                log.debug("task %s: progress not written: %s", self.task_id, error)

    def close(self) -> tuple[int, int, str]:
        """Stop writing progress (the task ended); returns the last figures."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return self.current, self.total, self.status

    # -- cancellation -----------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """Whether the task has been asked to stop (reading it records that the task saw it)."""
        if self._cancel.is_set():
            self.saw_cancel = True
            return True
        return False

    def check_cancelled(self) -> None:
        """Raise TaskCancelled if the task has been asked to stop."""
        if self.cancelled:
            raise TaskCancelled(self.cancel_reason or "cancelled")

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; returns True (early) if the task is cancelled meanwhile."""
        self._cancel.wait(max(0.0, seconds))
        return self.cancelled

    def cancel(self, reason: str) -> None:
        """Ask the task to stop (called by the worker pool, from any thread)."""
        if not self._cancel.is_set():
            self.cancel_reason = reason
            self._cancel.set()
