"""Task records, their state machine, the API shapes and retention: pure logic."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pvc.tasks import transitions
from pvc.tasks.records import TaskRecord, TaskState, valid_task_id, worker_name
from pvc.tasks.retention import Retention, select_expired
from pvc.tasks.views import accepted_view, group_by_worker, status_view, summary


def pending(task_id: str = "0a1b2c3d", run_on: str = "n1", created: float = 100.0) -> TaskRecord:
    return TaskRecord(id=task_id, name="test.sleep", run_on=run_on, args={"seconds": 1}, created=created)


def test_record_round_trips_and_rejects_garbage():
    record = pending()
    assert TaskRecord.from_bytes(record.to_bytes()) == record
    assert TaskRecord.from_bytes(b"") is None
    assert TaskRecord.from_bytes(b"not json") is None
    assert TaskRecord.from_bytes(b'{"id": "x"}') is None  # name and run_on are required
    assert TaskRecord.from_bytes(b'{"id":"x","name":"n","run_on":"a","state":"WEIRD"}') is None
    assert TaskRecord.from_bytes(b'{"id":"x","name":"n","run_on":"a","args":[1]}') is None
    extra = b'{"id":"x","name":"n","run_on":"a","future_field":1}'
    assert TaskRecord.from_bytes(extra) == TaskRecord(id="x", name="n", run_on="a")


def test_ids_and_worker_names():
    assert valid_task_id("0a1b2c3d")
    assert not valid_task_id("../config") and not valid_task_id("") and not valid_task_id("a/b")
    assert worker_name("hv1") == "pvcworker@hv1"


def test_happy_path_pending_running_success():
    running = transitions.claim(pending(), "pvcworker@n1", 110.0)
    assert (
        running.state == TaskState.RUNNING and running.started == 110.0 and running.worker == "pvcworker@n1"
    )
    assert transitions.claim(running, "pvcworker@n1", 111.0) is None  # never claimed twice
    moved = transitions.progress(running, 3, 10, "step 3")
    assert (moved.current, moved.total, moved.status) == (3, 10, "step 3")
    assert transitions.progress(moved, 3, 10, "step 3") is None  # nothing new to write
    done = transitions.succeed(moved, {"message": "all good"}, 120.0, current=9, total=10)
    assert done.state == TaskState.SUCCESS and done.current == 10 and done.status == "all good"
    assert done.finished == 120.0 and done.result == {"message": "all good"}
    for change in (
        transitions.progress(done, 1, 2, "x"),
        transitions.fail(done, "late", 130.0),
        transitions.lost(done, 130.0, "gone"),
        transitions.request_cancel(done, 130.0),
        transitions.succeed(done, None, 130.0, current=0, total=1),
    ):
        assert change is None  # finished records never change


def test_success_status_comes_from_the_result():
    running = transitions.claim(pending(), "w", 1.0)
    assert transitions.succeed(running, "made it", 2.0, current=0, total=1).status == "made it"
    assert transitions.succeed(running, [1, 2], 2.0, current=0, total=1).status == "Completed"
    assert transitions.succeed(running, None, 2.0, current=0, total=0).current == 0


def test_cancel_pending_finishes_it_and_cancel_running_sets_the_flag():
    cancelled = transitions.request_cancel(pending(), 105.0)
    assert cancelled.state == TaskState.FAILURE and cancelled.status == "cancelled"
    assert cancelled.started is None and cancelled.cancel_requested and cancelled.finished == 105.0
    running = transitions.claim(pending(), "w", 110.0)
    flagged = transitions.request_cancel(running, 111.0)
    assert flagged.state == TaskState.RUNNING and flagged.cancel_requested
    assert transitions.request_cancel(flagged, 112.0) is None
    assert transitions.claim(replace(pending(), cancel_requested=True), "w", 1.0) is None


def test_failure_and_worker_lost():
    running = transitions.progress(transitions.claim(pending(), "w", 1.0), 2, 5, "going")
    failed = transitions.fail(running, "disk on fire", 2.0)
    assert (failed.state, failed.status, failed.error, failed.current, failed.total) == (
        TaskState.FAILURE,
        "disk on fire",
        "disk on fire",
        2,
        5,
    )
    lost = transitions.lost(running, 3.0, "worker lost: n1 died")
    assert lost.status == "worker lost" and lost.error == "worker lost: n1 died"
    assert transitions.lost(pending(), 3.0, "x") is None  # only running tasks are lost


def test_api_shapes():
    record = pending()
    assert accepted_view(record) == {"task_id": "0a1b2c3d", "task_name": "test.sleep", "run_on": "n1"}
    assert status_view(record) == {
        "state": "PENDING",
        "current": 0,
        "total": 1,
        "status": "Pending job start",
    }
    done = transitions.succeed(transitions.claim(record, "w", 1.0), 7, 2.0, current=1, total=1)
    assert status_view(done)["result"] == 7
    entry = summary(record)
    assert entry["id"] == "0a1b2c3d" and entry["kwargs"] == {"seconds": 1} and entry["args"] == []
    assert entry["worker"] == entry["hostname"] == "pvcworker@n1"


def test_group_by_worker():
    running = transitions.claim(pending("aaaaaaaa", "n1"), "pvcworker@n1", 1.0)
    waiting = pending("bbbbbbbb", "n2")
    done = transitions.fail(pending("cccccccc", "n1"), "x", 2.0)
    shape = group_by_worker([running, waiting, done], nodes=["n1", "n3"])
    assert shape["scheduled"] == {"pvcworker@n1": [], "pvcworker@n3": []}
    assert [t["id"] for t in shape["active"]["pvcworker@n1"]] == ["aaaaaaaa"]
    assert shape["reserved"]["pvcworker@n1"] == [] and shape["reserved"]["pvcworker@n3"] == []
    assert [t["id"] for t in shape["reserved"]["pvcworker@n2"]] == ["bbbbbbbb"]
    assert group_by_worker([]) == {"active": {}, "reserved": {}, "scheduled": {}}


def test_select_expired_keeps_the_newest_and_the_young():
    def finished(task_id: str, at: float) -> TaskRecord:
        return transitions.fail(pending(task_id, created=at - 1), "x", at)

    records = [finished(f"t{i}", 1000.0 - i * 10) for i in range(6)]
    records.append(pending("p0", created=0.0))  # unfinished: never pruned
    assert select_expired(records, Retention(keep=4, max_age=1e9), 1000.0) == ["t4", "t5"]
    assert select_expired(records, Retention(keep=100, max_age=25), 1000.0) == ["t3", "t4", "t5"]
    assert select_expired(records, Retention(keep=0, max_age=1e9), 1000.0) == [f"t{i}" for i in range(6)]
    with pytest.raises(ValueError):
        Retention(keep=-1)
