"""The primary's timer for the autobackup and automirror schedules.

While a node is primary it looks every ``CHECK_EVERY`` seconds whether a schedule with an
``interval`` is due, and if so (and no run of it is going) queues the run on itself. When
each schedule last started is kept in ZooKeeper (``/config/schedules/<task>``), so the
timer goes on where it was when the primary role moves. A schedule seen for the first time
starts its clock then: its first run comes one interval later.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from pvc import tasks
from pvc.cluster.schedules import autobackup, automirror
from pvc.cluster.schedules.runs import active_run
from pvc.config.backup import BackupSection
from pvc.node.background import PassThread
from pvc.node.phases import Phase
from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.store import Store
from pvc.tasks import TaskType

log = logging.getLogger(__name__)

#: Seconds between looks at the schedules (more often for an interval under a minute).
CHECK_EVERY = 30.0


def scheduled(settings: BackupSection) -> list[tuple[TaskType, float, dict]]:
    """The scheduled task types with their interval and run arguments (those with one)."""
    found = []
    if settings.autobackup.interval > 0:
        args = {"email_recipients": list(settings.autobackup.report_to) or None}
        found.append((autobackup.run_autobackup, settings.autobackup.interval, args))
    if settings.automirror.interval > 0:
        args = {
            "email_recipients": list(settings.automirror.report_to) or None,
            "email_errors_only": settings.automirror.report_errors_only,
        }
        found.append((automirror.run_automirror, settings.automirror.interval, args))
    return found


class ScheduleTimer:
    """Queues the due scheduled runs on ``node`` (see the module)."""

    def __init__(
        self,
        store: Store,
        node: str,
        settings: BackupSection,
        *,
        clock: Callable[[], float] = time.time,
        check_every: float = CHECK_EVERY,
    ) -> None:
        self.store, self.node, self.clock = store, node, clock
        self.schedules = scheduled(settings)
        shortest = min((interval for _, interval, _ in self.schedules), default=check_every)
        self.thread = PassThread("schedules", self.run_pass, min(check_every, max(1.0, shortest / 2)))

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.stop()

    def _last(self, kind: TaskType) -> float | None:
        raw = self.store.get(paths.schedule(kind.name))
        try:
            return float(json.loads(raw)["last"]) if raw else None
        except (ValueError, KeyError, TypeError):
            return None

    def _mark(self, kind: TaskType, now: float, task: str | None) -> None:
        self.store.set(paths.schedule(kind.name), json.dumps({"last": now, "task": task}))

    def run_pass(self) -> list[str]:
        """Queue what is due; the ids of the tasks queued."""
        queued = []
        for kind, interval, args in self.schedules:
            now = self.clock()
            try:
                last = self._last(kind)
                if last is None:
                    self._mark(kind, now, None)
                    continue
                if now - last < interval or active_run(self.store, kind) is not None:
                    continue
                record = tasks.submit(self.store, kind, self.node, args)
                self._mark(kind, now, record.id)
            except StateError as error:
                log.warning("schedule %s: %s", kind.name, error)
                continue
            log.info("scheduled run of %s queued (task %s)", kind.name, record.id)
            queued.append(record.id)
        return queued


def schedules_phase(store: Store, node: str, settings: BackupSection) -> Phase | None:
    """The primary phase running the timer; None when no schedule has an interval."""
    if not scheduled(settings):
        return None
    timer = ScheduleTimer(store, node, settings)
    return Phase("schedules", timer.start, timer.stop)
