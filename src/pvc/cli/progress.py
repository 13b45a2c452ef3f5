"""What the CLI shows while it waits: a task's progress bar, an upload's byte bar, "Waiting..." dots,
and followed logs. The waiting itself is :mod:`pvc.client.waiters`; everything here goes to stderr
and is hidden by ``-q``/``-s`` (followed log lines go to stdout).

The environment variable ``PVC_CLI_FOLLOW_MAX_POLLS`` (ours, meant for tests and scripts) ends a
follow loop after that many re-polls instead of running until interrupted.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from pvc.cli.context import CliContext, CliError
from pvc.client import waiters
from pvc.client.http import ApiClient

FOLLOW_MAX_POLLS_ENV = "PVC_CLI_FOLLOW_MAX_POLLS"
# Polls between two dots of "Waiting..." while a node changes state.
DOT_EVERY_POLLS = 5
UPLOAD_REFRESH = 0.2  # seconds between upload bar redraws


def stderr_progress(cli: CliContext, *columns: str | ProgressColumn) -> Progress:
    """A rich progress display on stderr, redrawn only when asked, hidden by ``-q``/``-s``."""
    console = Console(file=sys.stderr, force_terminal=cli.colour or None, highlight=False)
    return Progress(*columns, console=console, auto_refresh=False, disable=cli.quiet or cli.silent)


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class TaskProgressBar:
    """A task's progress bar, shown from the first update (a task seen running) until closed."""

    def __init__(self, cli: CliContext, task_id: str) -> None:
        self.cli = cli
        self.task_id = task_id
        self._progress: Progress | None = None
        self._bar: TaskID | None = None

    def update(self, task: dict[str, Any]) -> None:
        """Show the task record's ``current``/``total`` and ``status``."""
        if self._progress is None or self._bar is None:
            self._progress = stderr_progress(
                self.cli,
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._progress.start()
            self._bar = self._progress.add_task(f"Task {self.task_id}", total=None)
        self._progress.update(
            self._bar,
            total=_count(task.get("total")),
            completed=_count(task.get("current")) or 0,
            description=str(task.get("status") or f"Task {self.task_id}"),
        )
        self._progress.refresh()

    def close(self) -> None:
        """Stop the display, if it was shown."""
        if self._progress is not None:
            self._progress.stop()

    def __enter__(self) -> TaskProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def wait_for_task(cli: CliContext, client: ApiClient, task_id: str) -> tuple[str, str]:
    """Poll a task until it has finished, showing a progress bar; returns ``(state, status)``.

    The bar goes to stderr (hidden by ``-q``/``-s``); the caller prints the final line.
    """
    with TaskProgressBar(cli, task_id) as bar:
        task = waiters.wait_for_task(client, task_id, on_progress=bar.update)
    return waiters.task_outcome(task)


def upload_progress(cli: CliContext, label: str, total: int) -> tuple[Progress, Callable[[int], None]]:
    """A byte progress bar on stderr (hidden by ``-q``/``-s``) and the callback that advances it."""
    progress = stderr_progress(
        cli,
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
    )
    bar = progress.add_task(f"Uploading {label}", total=total)
    last = [0.0]

    def advance(count: int) -> None:
        progress.advance(bar, count)
        now = time.monotonic()
        if now - last[0] >= UPLOAD_REFRESH or progress.tasks[0].completed >= total:
            last[0] = now
            progress.refresh()

    return progress, advance


def wait_for_node_state(
    cli: CliContext,
    client: ApiClient,
    node: str,
    field: str,
    transitional: str,
    target: str,
) -> str:
    """Wait for a node's ``field`` to leave ``transitional`` (see :func:`waiters.wait_for_node_state`),
    printing ``Waiting...``, a dot every few polls, then ``done. [<seconds>s]``; returns the final value.
    """
    started = time.monotonic()
    cli.note("Waiting...", nl=False)

    def dot(polls: int) -> None:
        if polls % DOT_EVERY_POLLS == 0:
            cli.note(".", nl=False)

    value = waiters.wait_for_node_state(client, node, field, transitional, target, on_poll=dot)
    cli.note(f" done. [{int(time.monotonic() - started)}s]")
    return value


def follow_max_polls() -> int | None:
    """The ``PVC_CLI_FOLLOW_MAX_POLLS`` limit, or None to follow until interrupted."""
    raw = os.environ.get(FOLLOW_MAX_POLLS_ENV)
    if not raw:
        return None
    try:
        return max(0, int(raw))
    except ValueError as exc:
        raise CliError(f"{FOLLOW_MAX_POLLS_ENV} must be an integer, not {raw!r}") from exc


def follow_log(fetch: Callable[[int], list[str]], lines: int, emit: Callable[[str], None]) -> None:
    """Print the last ``lines`` lines, then keep printing new ones until Ctrl-C (or
    ``PVC_CLI_FOLLOW_MAX_POLLS`` re-polls); see :func:`waiters.follow_log`."""
    waiters.follow_log(fetch, lines, emit, max_polls=follow_max_polls())
