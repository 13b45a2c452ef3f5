"""Waiting on the cluster: task progress, node state transitions and log following.

Tunables (module attributes, so tests may shorten them):

* ``TASK_POLL_INTERVAL`` (0.5 s) between ``GET /tasks/{id}`` polls;
* ``NODE_POLL_INTERVAL`` (1 s) between ``GET /node/{node}`` polls;
* ``FOLLOW_INTERVAL`` (0.5 s) between ``GET /node/{node}/log`` polls of ``node log --follow``.

The environment variable ``PVC_CLI_FOLLOW_MAX_POLLS`` (ours, meant for tests and scripts) ends a
follow loop after that many re-polls instead of running until interrupted.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pvc.cli.context import CliContext, CliError
from pvc.cli.http import ApiClient, ApiError, ApiUnreachable, segment

TASK_POLL_INTERVAL = 0.5
NODE_POLL_INTERVAL = 1.0
# Polls after which a node still in its old state counts as settled (the daemon may never have
# needed the transitional state, e.g. a flush of a node with no VMs that was already quick).
NODE_GRACE_POLLS = 5
FOLLOW_INTERVAL = 0.5
FOLLOW_WINDOW = 200
FOLLOW_MAX_POLLS_ENV = "PVC_CLI_FOLLOW_MAX_POLLS"

TASK_WAITING = "PENDING"
TASK_RUNNING = "RUNNING"
TASK_SUCCESS = "SUCCESS"


def _task(client: ApiClient, task_id: str) -> dict[str, Any]:
    data = client.get(f"/tasks/{segment(task_id)}").expect(200)
    if not isinstance(data, dict):
        raise CliError(f"Unexpected reply for task {task_id}")
    return data


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def wait_for_task(cli: CliContext, client: ApiClient, task_id: str) -> tuple[str, str]:
    """Poll a task until it has finished, showing a progress bar; returns ``(state, status)``.

    The bar goes to stderr (hidden by ``-q``/``-s``); the caller prints the final line.
    """
    data = _task(client, task_id)
    while data.get("state") == TASK_WAITING:
        time.sleep(TASK_POLL_INTERVAL)
        data = _task(client, task_id)
    if data.get("state") == TASK_RUNNING:
        console = Console(file=sys.stderr, force_terminal=cli.colour or None, highlight=False)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
            disable=cli.quiet or cli.silent,
        )
        with progress:
            bar = progress.add_task(f"Task {task_id}", total=None)
            while True:
                progress.update(
                    bar,
                    total=_count(data.get("total")),
                    completed=_count(data.get("current")) or 0,
                    description=str(data.get("status") or f"Task {task_id}"),
                )
                progress.refresh()
                if data.get("state") != TASK_RUNNING:
                    break
                time.sleep(TASK_POLL_INTERVAL)
                data = _task(client, task_id)
    return str(data.get("state")), str(data.get("status", ""))


def node_field(client: ApiClient, node: str, field: str) -> Any:
    """One field of ``GET /node/{node}``."""
    return client.get(f"/node/{segment(node)}").expect_one(f"Node {node}").get(field)


def wait_for_node_state(
    cli: CliContext,
    client: ApiClient,
    node: str,
    field: str,
    transitional: str,
    target: str,
) -> str:
    """Poll ``GET /node/{node}`` every second until ``field`` has left its ``transitional`` value.

    The node may not have entered the transitional value by the first poll, so the old value counts
    as settled only once the transitional one was seen or after ``NODE_GRACE_POLLS`` polls; reaching
    ``target`` ends the wait at once. API errors during the wait (a primary moving) are tolerated.
    Returns the final value.
    """
    started = time.monotonic()
    cli.note("Waiting...", nl=False)
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
            break
        if polls % 5 == 0:
            cli.note(".", nl=False)
    cli.note(f" done. [{int(time.monotonic() - started)}s]")
    return str(value)


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


def follow_max_polls() -> int | None:
    """The ``PVC_CLI_FOLLOW_MAX_POLLS`` limit, or None to follow until interrupted."""
    raw = os.environ.get(FOLLOW_MAX_POLLS_ENV)
    if not raw:
        return None
    try:
        return max(0, int(raw))
    except ValueError as exc:
        raise CliError(f"{FOLLOW_MAX_POLLS_ENV} must be an integer, not {raw!r}") from exc


def follow_log(
    fetch: Callable[[int], list[str]],
    lines: int,
    emit: Callable[[str], None],
) -> None:
    """Print the last ``lines`` lines, then re-poll every ``FOLLOW_INTERVAL`` printing only new ones.

    ``fetch(n)`` returns the last ``n`` lines. Ends on Ctrl-C, or after ``PVC_CLI_FOLLOW_MAX_POLLS``
    re-polls when that is set.
    """
    limit = follow_max_polls()
    shown = fetch(lines)[-lines:] if lines > 0 else []
    for line in shown:
        emit(line)
    seen = shown[-FOLLOW_WINDOW:]
    polls = 0
    try:
        while limit is None or polls < limit:
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
