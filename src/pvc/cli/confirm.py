"""Confirmation of dangerous commands: ``-y/--yes``, the global ``-u/--unsafe``, or a prompt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from pvc.cli.context import options

F = TypeVar("F", bound=Callable[..., Any])


def yes_option(func: F) -> F:
    """Add ``-y/--yes`` (stored as ``confirm_flag``) to a command."""
    return click.option(
        "-y",
        "--yes",
        "confirm_flag",
        is_flag=True,
        default=False,
        help="Confirm without asking.",
    )(func)


def confirm(message: str, confirm_flag: bool) -> None:
    """Ask ``<message>? [y/N]`` unless ``--yes`` or ``--unsafe``; a refusal prints ``Aborted.``, exits 0."""
    cli = options()
    if confirm_flag or cli.unsafe:
        return
    try:
        accepted = click.confirm(f"{message}?", default=False, prompt_suffix=" ", err=True)
    except click.Abort:
        accepted = False
        click.echo(err=True)
    if not accepted:
        cli.emit("Aborted.")
        raise click.exceptions.Exit(0)
