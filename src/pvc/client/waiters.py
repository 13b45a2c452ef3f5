"""Waiting on the cluster through its API: tasks, node state transitions and log following.

Nothing here displays anything: callers pass callbacks to show progress as they like.

Tunables (module attributes, read at each call, so tests may shorten them):

* ``API_POLL_INTERVAL`` (0.2 s) between ``GET /`` polls of an API that is not answering yet;
* ``TASK_POLL_INTERVAL`` (0.5 s) between ``GET /tasks/{id}`` polls;
* ``NODE_POLL_INTERVAL`` (1 s) between ``GET /node/{node}`` polls;
* ``NODE_GRACE_POLLS`` (5) polls after which a node still in its old state counts as settled;
* ``FOLLOW_INTERVAL`` (0.5 s) between polls of a followed log, remembering ``FOLLOW_WINDOW`` lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pvc.client.errors import ApiError, ApiUnreachable, TaskTimeout
from pvc.client.http import ApiClient, segment

API_POLL_INTERVAL = 0.2
TASK_POLL_INTERVAL = 0.5
NODE_POLL_INTERVAL = 1.0
# Polls after which a node still in its old state counts as settled (the daemon may never have
# needed the transitional state, e.g. a flush of a node with no VMs that was already quick).
NODE_GRACE_POLLS = 5
FOLLOW_INTERVAL = 0.5
FOLLOW_WINDOW = 200

TASK_WAITING = "PENDING"
TASK_RUNNING = "RUNNING"
TASK_SUCCESS = "SUCCESS"


def wait_for_api(client: ApiClient, timeout: float) -> None:
    """Poll ``GET /`` every ``API_POLL_INTERVAL`` until the API answers 200 (it may still be starting,
    or moving between coordinators); :class:`ApiUnreachable` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/").status == 200:
                return
        except ApiUnreachable:
            pass
        if time.monotonic() >= deadline:
            raise ApiUnreachable(
                f"The API at {client.connection.base_url} did not answer within {timeout:g} s"
            )
        time.sleep(API_POLL_INTERVAL)


def get_task(client: ApiClient, task_id: str) -> dict[str, Any]:
    """``GET /tasks/{task_id}``: the task's record (ApiError if the reply is not one)."""
    reply = client.get(f"/tasks/{segment(task_id)}")
    data = reply.expect(200)
    if not isinstance(data, dict):
        raise ApiError(f"Unexpected reply for task {task_id}", reply.status)
    return data


def task_outcome(task: dict[str, Any]) -> tuple[str, str]:
    """``(state, status)`` of a task record, as text."""
    return str(task.get("state")), str(task.get("status", ""))


def wait_for_task(
    client: ApiClient,
    task_id: str,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    *,
    poll_interval: float | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Poll a task while it waits and then while it runs; returns its last record.

    ``on_progress`` is called with each record polled from the first one that shows the task
    running, up to and including the first that no longer does (a task that finishes without being
    seen running makes no call). Polls are ``poll_interval`` (default ``TASK_POLL_INTERVAL``)
    seconds apart; with a ``timeout``, :class:`TaskTimeout` is raised once it has passed.
    """
    deadline = None if timeout is None else time.monotonic() + timeout

    def poll() -> dict[str, Any]:
        if deadline is not None and time.monotonic() >= deadline:
            raise TaskTimeout(f"Task {task_id} did not finish within {timeout:g} s")
        time.sleep(TASK_POLL_INTERVAL if poll_interval is None else poll_interval)
        return get_task(client, task_id)

    task = get_task(client, task_id)
    while task.get("state") == TASK_WAITING:
        task = poll()
    if task.get("state") == TASK_RUNNING:
        while True:
            if on_progress is not None:
                on_progress(task)
            if task.get("state") != TASK_RUNNING:
                break
            task = poll()
    return task


def node_field(client: ApiClient, node: str, field: str) -> Any:
    """One field of ``GET /node/{node}``."""
    return client.get(f"/node/{segment(node)}").expect_one(f"Node {node}").get(field)


def wait_for_node_state(
    client: ApiClient,
    node: str,
    field: str,
    transitional: str,
    target: str,
    on_poll: Callable[[int], None] | None = None,
) -> str:
    """Poll ``GET /node/{node}`` every ``NODE_POLL_INTERVAL`` until ``field`` has left ``transitional``.

    The node may not have entered the transitional value by the first poll, so the old value counts
    as settled only once the transitional one was seen or after ``NODE_GRACE_POLLS`` polls; reaching
    ``target`` ends the wait at once. API errors during the wait (a primary moving) are tolerated.
    ``on_poll`` is called with the number of polls so far after each poll that does not end the
    wait. Returns the final value.
    """
    seen_transitional = False
    polls = 0
    while True:
        time.sleep(NODE_POLL_INTERVAL)
        polls += 1
        try:
            value = node_field(client, node, field)
        except (ApiError, ApiUnreachable):
            value = None
        if value == transitional:
            seen_transitional = True
        elif value is not None and (value == target or seen_transitional or polls >= NODE_GRACE_POLLS):
            return str(value)
        if on_poll is not None:
            on_poll(polls)


def unseen_lines(seen: list[str], fetched: list[str]) -> list[str]:
    """The lines at the end of ``fetched`` that come after what ``seen`` ends with.

    Finds the longest prefix of ``fetched`` that ends with the tail of ``seen`` (latest match wins)
    and returns what follows it; with no overlap at all every fetched line is new.
    """
    for end in range(len(fetched), 0, -1):
        length = min(end, len(seen))
        if length and fetched[end - length : end] == seen[len(seen) - length :]:
            return fetched[end:]
    return fetched


def follow_log(
    fetch: Callable[[int], list[str]],
    lines: int,
    emit: Callable[[str], None],
    max_polls: int | None = None,
) -> None:
    """Emit the last ``lines`` lines, then re-poll every ``FOLLOW_INTERVAL`` emitting only new ones.

    ``fetch(n)`` returns the last ``n`` lines. Ends on Ctrl-C, or after ``max_polls`` re-polls when
    that is given.
    """
    shown = fetch(lines)[-lines:] if lines > 0 else []
    for line in shown:
        emit(line)
    seen = shown[-FOLLOW_WINDOW:]
    polls = 0
    try:
        while max_polls is None or polls < max_polls:
            time.sleep(FOLLOW_INTERVAL)
            polls += 1
            fetched = fetch(max(lines, FOLLOW_WINDOW))
            fresh = unseen_lines(seen, fetched)
            for line in fresh:
                emit(line)
            if fresh:
                seen = (seen + fresh)[-FOLLOW_WINDOW:]
    except KeyboardInterrupt:
        return
