"""The primary's timer for autobackup and automirror (pvc.node.schedules), over a real
ZooKeeper with a clock of the test's: it starts its clock, queues due runs once, never two
at a time, and a new timer (another primary) goes on from the recorded start."""

from __future__ import annotations

import json
from dataclasses import replace

from pvc import tasks
from pvc.config.backup import BackupSection
from pvc.node.schedules import ScheduleTimer, scheduled, schedules_phase
from pvc.state import paths
from pvc.state.schema import ensure_schema
from pvc.tasks.views import records

SETTINGS = BackupSection.model_validate(
    {
        "paths": ["/srv/backups"],
        "autobackup": {"path": "/srv/backups/auto", "interval": 3600, "report_to": ["ops@example.com"]},
        "automirror": {"interval": 600, "report_errors_only": True},
    }
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def queued(store, name: str) -> list[tasks.TaskRecord]:
    return [record for record in records(store) if record.name == name]


def test_the_timer_queues_each_due_schedule_once_and_survives_a_new_primary(store):
    ensure_schema(store)
    clock = Clock()
    timer = ScheduleTimer(store, "hv1", SETTINGS, clock=clock)
    assert timer.run_pass() == []  # the clocks start now
    assert json.loads(store.get(paths.schedule("cluster.autobackup")))["last"] == clock.now

    clock.now += 601
    [mirror_run] = timer.run_pass()
    assert queued(store, "cluster.automirror")[0].id == mirror_run
    assert queued(store, "cluster.automirror")[0].args == {
        "email_recipients": None,
        "email_errors_only": True,
    }
    assert queued(store, "cluster.autobackup") == []

    clock.now += 601  # due again, but the first run has not ended: nothing more
    assert timer.run_pass() == []

    # another primary's timer reads the same records: the backup is due, the mirror still runs
    clock.now += 3000
    other = ScheduleTimer(store, "hv2", SETTINGS, clock=clock)
    [backup_run] = other.run_pass()
    [backup] = queued(store, "cluster.autobackup")
    assert backup.id == backup_run and backup.run_on == "hv2"
    assert backup.args["email_recipients"] == ["ops@example.com"]

    # once the mirror run has ended, the next pass queues a new one
    tasks.update(store, mirror_run, lambda r: replace(r, state=tasks.TaskState.SUCCESS))
    [again] = other.run_pass()
    assert {r.id for r in queued(store, "cluster.automirror")} == {mirror_run, again}
    assert other.run_pass() == []


def test_without_an_interval_there_is_no_timer(store):
    assert scheduled(BackupSection()) == []
    assert schedules_phase(store, "hv1", BackupSection()) is None
    assert schedules_phase(store, "hv1", SETTINGS) is not None
