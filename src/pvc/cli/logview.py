"""Showing a log the API serves as ``{"name", "data"}`` (node logs, VM consoles), optionally followed."""

from __future__ import annotations

from collections.abc import Callable

import click

from pvc.cli.context import options
from pvc.cli.progress import follow_log

DEFAULT_LOG_LINES = 1000
DEFAULT_FOLLOW_LINES = 10


def log_options(command: Callable) -> Callable:
    """The ``-l/--lines`` and ``-f/--follow`` options of a log command."""
    command = click.option(
        "-f",
        "--follow",
        "follow_flag",
        is_flag=True,
        default=False,
        help="Keep printing new lines as they arrive (Ctrl-C to stop).",
    )(command)
    return click.option(
        "-l",
        "--lines",
        "lines",
        type=click.IntRange(min=0),
        default=None,
        help=f"Number of lines to show [default: {DEFAULT_LOG_LINES}, or {DEFAULT_FOLLOW_LINES} with -f].",
    )(command)


def show_log(path: str, lines: int | None, follow_flag: bool) -> None:
    """Print the last ``lines`` lines of the log at API ``path``; with ``follow_flag`` keep polling."""
    cli = options()
    client = cli.client()
    count = lines if lines is not None else DEFAULT_FOLLOW_LINES if follow_flag else DEFAULT_LOG_LINES

    def fetch(wanted: int) -> list[str]:
        data = client.get(path, params={"lines": wanted}).expect(200)
        text = data.get("data", "") if isinstance(data, dict) else ""
        return str(text or "").splitlines()

    if follow_flag:
        follow_log(fetch, count, cli.emit)
    else:
        for line in fetch(count)[-count:] if count else []:
            cli.emit(line)
