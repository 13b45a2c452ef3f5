"""The task registry, the task context and the runner, without ZooKeeper."""

from __future__ import annotations

import threading
import time

import pytest

from pvc.tasks import runner, transitions
from pvc.tasks.builtin import BUILTIN_TASKS, sleep
from pvc.tasks.context import TaskContext
from pvc.tasks.errors import InvalidTaskError, TaskCancelled
from pvc.tasks.records import TaskRecord, TaskState
from pvc.tasks.registry import TaskRegistry, TaskType, task_type


def make_context(writes: list | None = None, interval: float = 0.05, **args) -> TaskContext:
    record = TaskRecord(id="0a1b2c3d", name="test.sleep", run_on="n1", args=args, state=TaskState.RUNNING)
    sink = writes if writes is not None else []
    return TaskContext(record, None, lambda *figures: sink.append(figures), interval=interval)


def test_task_types_validate_submissions():
    assert sleep.name == "test.sleep"
    assert sleep.check_arguments({"seconds": "2", "steps": 4}) == {"seconds": 2.0, "steps": 4}
    assert sleep.check_arguments(None) == {"seconds": 1.0, "steps": 10}
    with pytest.raises(InvalidTaskError, match="unexpected keyword"):
        sleep.check_arguments({"nap": 1})
    with pytest.raises(InvalidTaskError, match="must be numbers"):
        sleep.check_arguments({"seconds": "soon"})
    with pytest.raises(InvalidTaskError, match="mapping"):
        sleep.check_arguments([1, 2])


def test_a_registry_holds_what_its_daemon_offers():
    offered = TaskRegistry(BUILTIN_TASKS)
    assert offered.names() == ["test.sleep"] and offered.lookup("test.sleep") is sleep
    assert offered.lookup("no-such-task") is None
    assert TaskRegistry().lookup("test.sleep") is None  # nothing is registered globally


def test_registry_refuses_a_second_function_for_a_name():
    @task_type("tests.unit.once")
    def first(ctx):
        return 1

    @task_type("tests.unit.once")
    def second(ctx):
        return 2

    offered = TaskRegistry([first])
    offered.add(first)  # the same type again: fine
    with pytest.raises(ValueError, match="already registered"):
        offered.add(second)
    with pytest.raises(ValueError, match="already registered"):
        TaskRegistry([first, second])
    assert first(None) == 1  # a task type is called like its function


def test_progress_is_throttled_but_the_last_figures_arrive():
    writes: list[tuple[int, int, str]] = []
    ctx = make_context(writes, interval=0.05)
    began = time.monotonic()
    for step in range(1, 41):
        ctx.progress(step, 40, f"step {step}")
        time.sleep(0.005)
    elapsed = time.monotonic() - began
    time.sleep(0.12)
    assert writes[0] == (1, 40, "step 1")
    assert writes[-1] == (40, 40, "step 40")
    assert len(writes) <= elapsed / 0.05 + 3
    assert [w[0] for w in writes] == sorted(w[0] for w in writes)
    assert ctx.close() == (40, 40, "step 40")
    ctx.progress(41)
    time.sleep(0.08)
    assert writes[-1] == (40, 40, "step 40")  # closed: nothing more is written


def test_progress_keeps_total_and_status_when_omitted():
    writes: list = []
    ctx = make_context(writes, interval=0)
    ctx.progress(1, 5, "one")
    ctx.progress(2)
    assert writes == [(1, 5, "one"), (2, 5, "one")]


def test_cancellation_flags():
    ctx = make_context()
    assert not ctx.cancelled and not ctx.saw_cancel
    threading.Timer(0.05, ctx.cancel, args=("cancelled by request",)).start()
    began = time.monotonic()
    assert ctx.sleep(5) is True
    assert time.monotonic() - began < 1
    assert ctx.saw_cancel and ctx.cancel_reason == "cancelled by request"
    with pytest.raises(TaskCancelled, match="cancelled by request"):
        ctx.check_cancelled()


def finish(function, ctx: TaskContext | None = None, **args) -> TaskRecord | None:
    """Run ``function`` through the runner and apply its change to a running record."""
    ctx = ctx or make_context(interval=0)
    task_type = TaskType("tests.unit", function)
    run = runner.Run(record=TaskRecord(id="0a1b2c3d", name="x", run_on="n1", args=args), claim=None, ctx=ctx)
    change = runner.outcome(run, task_type)
    started = transitions.claim(TaskRecord(id="0a1b2c3d", name="x", run_on="n1"), "w", 1.0)
    return change(started)


def test_runner_outcomes():
    assert finish(lambda ctx, x: x * 2, x=21).result == 42
    failed = finish(lambda ctx: 1 / 0)
    assert failed.state == TaskState.FAILURE and failed.error == "division by zero"
    assert finish(lambda ctx: object()).error.startswith("the task's result cannot be stored as JSON")

    def cooperative(ctx):
        ctx.cancel("cancelled by request")
        if ctx.cancelled:
            return "stopped early"
        return "never"

    stopped = finish(cooperative)
    assert stopped.state == TaskState.FAILURE and stopped.status == "cancelled"
    assert stopped.error == "cancelled by request"

    def raising(ctx):
        ctx.cancel("node daemon stopping")
        ctx.check_cancelled()

    assert finish(raising).status == "cancelled"

    def oblivious(ctx):
        ctx.cancel("cancelled by request")  # the flag is set but the task never looks
        return "finished anyway"

    assert finish(oblivious).state == TaskState.SUCCESS


def test_builtin_sleep_reports_progress_and_stops_when_cancelled():
    from pvc.tasks.builtin import sleep

    writes: list = []
    result = sleep(make_context(writes, interval=0), seconds=0.05, steps=5)
    assert result == {"message": "slept 0.05 s", "steps": 5}
    assert writes[0][:2] == (0, 5) and writes[-1][:2] == (5, 5)
    ctx = make_context(interval=0)
    threading.Timer(0.05, ctx.cancel, args=("cancelled by request",)).start()
    began = time.monotonic()
    partial = sleep(ctx, seconds=10, steps=10)
    assert time.monotonic() - began < 2 and partial["steps"] == 0 and ctx.saw_cancel
