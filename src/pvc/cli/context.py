"""The resolved global options, handed to every command through the Click context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import click

from pvc.client import connections
from pvc.client.errors import ConnectionStoreError
from pvc.client.http import ApiClient


class CliError(click.ClickException):
    """A failure shown as one line on stderr (``Error: ...``) with exit status 1; hidden by ``-s``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        # show() runs after the Click context has closed, so note ``-s`` now.
        found = current(required=False)
        self.silent = found is not None and found.silent

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the message unless the user asked for silence."""
        if not self.silent:
            super().show(file)


@dataclass
class CliContext:
    """Global options of ``pvc`` and the API client built from them on first use."""

    connection_name: str | None = None
    debug: bool = False
    quiet: bool = False
    silent: bool = False
    unsafe: bool = False
    colour: bool = False
    _client: ApiClient | None = field(default=None, repr=False)

    def client(self) -> ApiClient:
        """The API client of the selected connection; prints the banner the first time."""
        if self._client is None:
            try:
                connection = connections.resolve_connection(self.connection_name)
            except ConnectionStoreError as exc:
                raise CliError(str(exc)) from exc
            self._client = ApiClient(connection, debug_log=self.debug_log())
            self.note(
                f'Using connection "{connection.name}" - Host: "{connection.api_host}"  '
                f'Scheme: "{connection.scheme}"  Prefix: "{connections.API_PREFIX}"'
            )
        return self._client

    def emit(self, text: str = "", nl: bool = True) -> None:
        """Print to stdout unless ``-s``."""
        if not self.silent:
            click.echo(text, nl=nl, color=self.colour or None)

    def note(self, text: str = "", nl: bool = True) -> None:
        """Print to stderr unless ``-q`` or ``-s``."""
        if not (self.quiet or self.silent):
            click.echo(text, nl=nl, err=True)

    def debug_log(self) -> Callable[[str], None] | None:
        """With ``-v``, a function printing API call details to stderr (unless ``-s``); else None."""
        if not self.debug or self.silent:
            return None
        return lambda text: click.echo(text, err=True)


def current(required: bool = True) -> CliContext | None:
    """The :class:`CliContext` of the running command (a default one outside the ``pvc`` group)."""
    ctx = click.get_current_context(silent=True)
    options = ctx.find_object(CliContext) if ctx is not None else None
    if options is None and required:
        options = CliContext()
        if ctx is not None:
            ctx.obj = options
    return options


def options() -> CliContext:
    """Like :func:`current` but never None, for use inside commands."""
    found = current(required=True)
    assert found is not None
    return found
