"""Durable tasks against a real ZooKeeper: submission, workers, progress, cancel, loss."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from pvc import tasks
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.schema import ensure_schema
from pvc.state.store import Store
from pvc.tasks import transitions
from pvc.tasks.builtin import BUILTIN_TASKS, sleep
from pvc.tasks.control import update
from pvc.tasks.records import TaskRecord
from tests.helpers import wait_for
from tests.integration.conftest import expire_session

# -- task types used only here ------------------------------------------------------------

EXECUTIONS: Counter[str] = Counter()
_EXECUTIONS_LOCK = threading.Lock()


@tasks.task_type("tests.fail")
def fail(ctx: tasks.TaskContext, message: str = "boom") -> None:
    ctx.progress(1, 4, "about to fail")
    raise RuntimeError(message)


@tasks.task_type("tests.count")
def count(ctx: tasks.TaskContext, pause: float = 0.02) -> str:
    with _EXECUTIONS_LOCK:
        EXECUTIONS[ctx.task_id] += 1
    time.sleep(pause)
    return f"counted {ctx.task_id}"


@tasks.task_type("tests.stubborn")
def stubborn(ctx: tasks.TaskContext, seconds: float = 1.0) -> str:
    time.sleep(seconds)  # never looks at ctx.cancelled
    return "done at last"


#: ``on_lost`` calls of ``tests.tidy``: (the reaping pool's services, the lost record).
TIDIED: list[tuple[object, TaskRecord]] = []


def _tidy_after(services: object, lost: TaskRecord) -> str | None:
    TIDIED.append((services, lost))
    if lost.args.get("tidy") == "raise":
        raise RuntimeError("the disk was not there")
    return f"tidied what {lost.id} made" if lost.args.get("tidy") else None


@tasks.task_type("tests.tidy", on_lost=_tidy_after)
def tidy_task(ctx: tasks.TaskContext, tidy: str = "", seconds: float = 30.0) -> str:
    ctx.sleep(seconds)
    return "finished untidily"


#: What the pools of these tests run: the built-in types and the ones above.
OFFERED = (*BUILTIN_TASKS, fail, count, stubborn, tidy_task)


@pytest.fixture(autouse=True)
def fresh_counts():
    EXECUTIONS.clear()


@pytest.fixture
def workers(make_store):
    """Start bare TaskWorkers pools: ``workers("n1", concurrency=2)``; stopped at the end."""
    pools: list[tasks.TaskWorkers] = []

    def start(
        node: str,
        concurrency: int = 2,
        store: Store | None = None,
        offered: tuple[tasks.TaskType, ...] = OFFERED,
        **kwargs,
    ) -> tasks.TaskWorkers:
        registry = tasks.TaskRegistry(offered)
        pool = tasks.TaskWorkers(store or make_store(timeout=2.0), node, registry, concurrency, **kwargs)
        pool.start()
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        pool.stop(grace=1.0)


def record(store: Store, task_id: str) -> TaskRecord:
    found = tasks.get(store, task_id)
    assert found is not None, f"no task {task_id}"
    return found


def finished(store: Store, task_id: str, timeout: float = 10.0) -> TaskRecord:
    return wait_for(lambda: (r := record(store, task_id)).is_finished and r, timeout)


def running(store: Store, task_id: str, timeout: float = 10.0) -> TaskRecord:
    return wait_for(lambda: (r := record(store, task_id)).is_running and r, timeout)


# -- submission ---------------------------------------------------------------------------


def test_submit_validates_before_writing(store):
    ensure_schema(store)
    with pytest.raises(tasks.InvalidTaskError, match="run_on"):
        tasks.submit(store, sleep, "", {})
    with pytest.raises(tasks.InvalidTaskError, match="unexpected keyword"):
        tasks.submit(store, sleep, "n1", {"minutes": 3})
    with pytest.raises(tasks.InvalidTaskError, match="steps must be at least 1"):
        tasks.submit(store, sleep, "n1", {"steps": 0})
    assert store.children(paths.TASKS) == []

    submitted = tasks.submit(store, sleep, "n1", {"seconds": 1, "steps": 2})
    assert len(submitted.id) == 8 and int(submitted.id, 16) >= 0
    assert tasks.accepted_view(submitted) == {
        "task_id": submitted.id,
        "task_name": "test.sleep",
        "run_on": "n1",
    }
    stored = record(store, submitted.id)
    assert stored == submitted
    assert stored.args == {"seconds": 1.0, "steps": 2}
    assert tasks.status_view(stored) == {
        "state": "PENDING",
        "current": 0,
        "total": 1,
        "status": "Pending job start",
    }
    assert tasks.get(store, "ffffffff") is None
    assert tasks.get(store, "../config") is None


# -- running on a node daemon -------------------------------------------------------------


def test_node_daemon_runs_a_task_with_visible_progress(cluster, store):
    node = cluster("n1", ["n1"])
    submitted = tasks.submit(store, sleep, "n1", {"seconds": 1.5, "steps": 10})
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while (current := record(store, submitted.id)).state in ("PENDING", "RUNNING"):
        assert time.monotonic() < deadline, "the task did not finish"
        if current.is_running:
            view = tasks.status_view(current)
            assert set(view) == {"state", "current", "total", "status"}
            seen.append(view["current"])
        time.sleep(0.05)
    assert len(set(seen)) >= 3 and seen == sorted(seen), seen
    assert current.state == "SUCCESS"
    assert current.worker == "pvcworker@n1" and current.started and current.finished
    view = tasks.status_view(current)
    assert view == {
        "state": "SUCCESS",
        "current": 10,
        "total": 10,
        "status": "slept 1.5 s",
        "result": {"message": "slept 1.5 s", "steps": 10},
    }
    wait_for(lambda: node.loop.tasks.running() == [], 2)  # the claim is released after the write


def test_node_daemon_stop_cancels_its_running_task(cluster, store):
    node = cluster("n1", ["n1"])
    submitted = tasks.submit(store, sleep, "n1", {"seconds": 60, "steps": 600})
    running(store, submitted.id)
    began = time.monotonic()
    node.stop()
    assert time.monotonic() - began < 5
    final = record(store, submitted.id)
    assert final.state == "FAILURE" and final.status == "cancelled"
    assert "node daemon stopping" in final.error
    assert store.children(paths.task_claim(submitted.id)) == []


# -- outcomes -----------------------------------------------------------------------------


def test_a_raising_task_fails_with_its_message_and_the_worker_survives(workers, store):
    pool = workers("n1", concurrency=1)
    failing = tasks.submit(store, fail, "n1", {"message": "disk on fire"})
    after = tasks.submit(store, count, "n1", {})
    failed = finished(store, failing.id)
    assert failed.state == "FAILURE"
    assert failed.error == "disk on fire" and failed.status == "disk on fire"
    assert tasks.status_view(failed) == {
        "state": "FAILURE",
        "current": 1,
        "total": 4,
        "status": "disk on fire",
        "result": None,
    }
    assert finished(store, after.id).state == "SUCCESS"
    assert record(store, after.id).status == f"counted {after.id}"
    wait_for(lambda: pool.running() == [], 2)


def test_cancel_a_running_task(workers, store):
    workers("n1")
    submitted = tasks.submit(store, sleep, "n1", {"seconds": 30, "steps": 300})
    running(store, submitted.id)
    asked = time.monotonic()
    assert tasks.request_cancel(store, submitted.id).cancel_requested
    final = finished(store, submitted.id, timeout=5)
    assert time.monotonic() - asked < 2
    assert final.state == "FAILURE" and final.status == "cancelled"
    assert tasks.request_cancel(store, submitted.id) == final  # finished: left alone
    with pytest.raises(tasks.TaskNotFoundError):
        tasks.request_cancel(store, "00000000")


def test_a_cancelled_pending_task_never_starts(workers, store):
    workers("n1", concurrency=1)
    blocker = tasks.submit(store, sleep, "n1", {"seconds": 30, "steps": 30})
    running(store, blocker.id)
    waiting = tasks.submit(store, sleep, "n1", {"seconds": 0.1, "steps": 1})
    cancelled = tasks.request_cancel(store, waiting.id)
    assert cancelled.state == "FAILURE" and cancelled.status == "cancelled" and cancelled.started is None
    tasks.request_cancel(store, blocker.id)
    finished(store, blocker.id)
    time.sleep(0.3)  # the pool is free now; the cancelled task must still not run
    assert record(store, waiting.id) == cancelled


def test_stop_gives_up_on_a_task_that_ignores_cancellation(workers, store):
    pool = workers("n1")
    submitted = tasks.submit(store, stubborn, "n1", {"seconds": 1.5})
    running(store, submitted.id)
    began = time.monotonic()
    pool.stop(grace=0.3)
    assert time.monotonic() - began < 1.5
    final = record(store, submitted.id)
    assert final.state == "FAILURE" and final.status == "worker lost"
    assert "did not stop within 0.3 s" in final.error
    assert store.children(paths.task_claim(submitted.id)) == []
    time.sleep(1.5)  # the thread ends later; its result must not overwrite the record
    assert record(store, submitted.id) == final


def test_a_task_type_unknown_to_the_node_fails_there(workers, store):
    ensure_schema(store)
    submitted = tasks.submit(store, count, "n1", {})
    workers("n1", offered=BUILTIN_TASKS)  # as if n1 ran older code
    final = finished(store, submitted.id)
    assert final.state == "FAILURE" and "not known on n1" in final.error and final.started is None


def test_an_idle_pool_sends_no_requests(workers, make_store):
    quiet = make_store()
    pool = workers("n1", store=quiet)
    assert pool.cache.wait_ready()
    time.sleep(0.2)  # the first pass (claims, reaping, pruning) has run
    before = quiet.operations
    time.sleep(1.2)  # more than one tick
    assert quiet.operations == before


# -- claiming -----------------------------------------------------------------------------


def test_only_the_run_on_node_claims(workers, store):
    workers("a")
    workers("b")
    ids = {node: [tasks.submit(store, count, node, {}).id for _ in range(3)] for node in "ab"}
    stray = tasks.submit(store, count, "c", {})
    for node, task_ids in ids.items():
        for task_id in task_ids:
            done = finished(store, task_id)
            assert done.state == "SUCCESS" and done.worker == f"pvcworker@{node}"
    time.sleep(0.2)
    assert record(store, stray.id).state == "PENDING"


def test_pools_of_one_node_never_run_a_task_twice(workers, make_store, store):
    for _ in range(3):
        workers("n1", concurrency=2, store=make_store(timeout=2.0))
    ids = [tasks.submit(store, count, "n1", {"pause": 0.01}).id for _ in range(40)]
    for task_id in ids:
        assert finished(store, task_id).state == "SUCCESS"
    assert dict(EXECUTIONS) == dict.fromkeys(ids, 1)


# -- lost workers -------------------------------------------------------------------------


def test_a_dead_workers_task_is_marked_lost_by_another_node(workers, make_store, store):
    doomed_store = make_store(timeout=2.0)
    doomed = workers("n1", store=doomed_store)
    workers("n2")
    submitted = tasks.submit(store, sleep, "n1", {"seconds": 30, "steps": 300})
    running(store, submitted.id)
    doomed_store.stop()  # the daemon dies: its session closes, its claim goes with it
    final = finished(store, submitted.id, timeout=5)
    assert final.state == "FAILURE" and final.status == "worker lost"
    assert "pvcworker@n1" in final.error
    wait_for(lambda: doomed.running() == [], 5)


@pytest.mark.parametrize("tidy", ["yes", "raise", ""])
def test_the_node_that_finds_a_lost_run_cleans_up_after_it(workers, make_store, store, tidy):
    TIDIED.clear()
    doomed_store = make_store(timeout=2.0)
    workers("n1", store=doomed_store, services="services of n1")
    workers("n2", services="services of n2")
    submitted = tasks.submit(store, tidy_task, "n1", {"tidy": tidy})
    running(store, submitted.id)
    doomed_store.stop()
    final = finished(store, submitted.id, timeout=5)
    assert final.status == "worker lost"
    wait_for(lambda: len(TIDIED) == 1, 5)
    services, lost = TIDIED[0]
    assert services == "services of n2" and lost.id == submitted.id and lost.status == "worker lost"
    if tidy == "yes":
        noted = wait_for(
            lambda: (r := record(store, submitted.id)).error.endswith(f"tidied what {r.id} made") and r, 5
        )
        assert noted.result == {"message": noted.error} and "pvcworker@n1" in noted.error
    elif tidy == "raise":
        wait_for(
            lambda: (
                "cleaning up after it failed: the disk was not there" in record(store, submitted.id).error
            ),
            5,
        )
    else:
        time.sleep(0.3)
        assert record(store, submitted.id).error == final.error  # nothing to say, nothing written


def test_a_restarted_node_marks_its_orphans_lost(workers, make_store, store):
    first_store = make_store(timeout=2.0)
    workers("n1", store=first_store)
    submitted = tasks.submit(store, sleep, "n1", {"seconds": 30, "steps": 300})
    running(store, submitted.id)
    first_store.stop()
    time.sleep(0.3)
    assert record(store, submitted.id).state == "RUNNING"  # nobody else is watching
    workers("n1")  # the daemon comes back
    final = finished(store, submitted.id, timeout=5)
    assert final.status == "worker lost"


def test_an_expired_session_loses_the_task(workers, make_store, store):
    worker_store = make_store(timeout=2.0)
    pool = workers("n1", store=worker_store)
    submitted = tasks.submit(store, sleep, "n1", {"seconds": 30, "steps": 300})
    running(store, submitted.id)
    expire_session(worker_store)
    final = finished(store, submitted.id, timeout=8)
    assert final.state == "FAILURE" and final.status == "worker lost"
    wait_for(lambda: pool.running() == [], 5)
    # the pool survives on its new session and runs the next task
    after = tasks.submit(store, count, "n1", {})
    assert finished(store, after.id).state == "SUCCESS"


# -- listing and retention ----------------------------------------------------------------


def test_list_by_worker_has_the_v1_shape(workers, store):
    workers("n1", concurrency=1)
    active = tasks.submit(store, sleep, "n1", {"seconds": 30, "steps": 30})
    running(store, active.id)
    reserved = tasks.submit(store, sleep, "n1", {"seconds": 1, "steps": 1})
    elsewhere = tasks.submit(store, count, "n2", {"pause": 0})
    done = tasks.submit(store, count, "n9", {})
    tasks.request_cancel(store, done.id)

    cache = ClusterCache(store, roots=(paths.TASKS,))
    cache.start()
    assert cache.wait_ready()
    try:
        wait_for(lambda: tasks.get(cache, done.id) and tasks.get(cache, done.id).is_finished)
        for source in (store, cache):
            listing = tasks.list_by_worker(source, nodes=["n1", "n2", "n3"])
            assert set(listing) == {"active", "reserved", "scheduled"}
            assert listing["scheduled"] == {"pvcworker@n1": [], "pvcworker@n2": [], "pvcworker@n3": []}
            assert [t["id"] for t in listing["active"]["pvcworker@n1"]] == [active.id]
            assert listing["active"]["pvcworker@n2"] == [] and listing["active"]["pvcworker@n3"] == []
            assert [t["id"] for t in listing["reserved"]["pvcworker@n1"]] == [reserved.id]
            assert [t["id"] for t in listing["reserved"]["pvcworker@n2"]] == [elsewhere.id]
            entry = listing["active"]["pvcworker@n1"][0]
            assert entry["name"] == "test.sleep" and entry["kwargs"] == {"seconds": 30.0, "steps": 30}
            assert entry["args"] == [] and entry["worker"] == "pvcworker@n1" and entry["time_start"]
            assert tasks.status_view(tasks.get(source, done.id))["state"] == "FAILURE"
    finally:
        cache.close()
    tasks.request_cancel(store, active.id)


def test_retention_prunes_old_and_surplus_finished_records(store):
    ensure_schema(store)
    now = time.time()
    finished_ids = []
    for age in (10, 20, 30, 40, 9 * 86400):
        submitted = tasks.submit(store, count, "n1", {}, now=now - age - 1)
        update(store, submitted.id, lambda r, age=age: transitions.fail(r, "old", now - age))
        finished_ids.append(submitted.id)
    pending = tasks.submit(store, count, "n1", {}, now=now - 10 * 86400)
    removed = tasks.prune(store, tasks.Retention(keep=3, max_age=7 * 86400), now=now)
    assert sorted(removed) == sorted(finished_ids[3:])
    assert sorted(store.children(paths.TASKS)) == sorted([*finished_ids[:3], pending.id])


def test_workers_prune_on_their_own(workers, store):
    workers("n1", retention_policy=tasks.Retention(keep=2), prune_interval=0.1, tick=0.1)
    ids = [tasks.submit(store, count, "n1", {"pause": 0}).id for _ in range(5)]
    wait_for(lambda: len(store.children(paths.TASKS)) == 2, 10)
    kept = store.children(paths.TASKS)
    assert set(kept) <= set(ids)
    wait_for(lambda: set(store.children(paths.task_claims())) <= set(kept), 5)
