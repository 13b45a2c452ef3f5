"""Fixtures for the CLI tests: an isolated connection store, a fake API, and a CLI runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from pvc.cli.main import cli
from pvc.client import connections
from tests.cli.fakeapi import API_KEY, FakeApi, serve
from tests.client import conftest as client_fixtures

# The store and poll fixtures are the client tests'; only the environment cleared is wider.
store_dir = client_fixtures.store_dir
fast_polls = client_fixtures.fast_polls

# Environment variables the CLI reads, cleared so the caller's environment cannot leak into tests.
CLEARED_ENV = [
    *client_fixtures.CLIENT_ENV,
    "PVC_DEBUG",
    "PVC_QUIET",
    "PVC_SILENT",
    "PVC_UNSAFE",
    "PVC_COLOUR",
    "PVC_CLI_FOLLOW_MAX_POLLS",
]

Invoke = Callable[..., Result]


@pytest.fixture
def cleared_env() -> list[str]:
    """The environment variables ``store_dir`` clears: the client's and the CLI's."""
    return CLEARED_ENV


@pytest.fixture
def fake_api() -> FakeApi:
    """The fake API's state (not yet served)."""
    return FakeApi()


@pytest.fixture
def api_port(fake_api: FakeApi) -> Iterator[int]:
    """Serve ``fake_api`` and return its port."""
    with serve(fake_api) as port:
        yield port


@pytest.fixture
def connected(store_dir: Path, api_port: int) -> int:
    """A default connection ``test`` to the served fake API; returns its port."""
    connections.register_connection("test", "127.0.0.1", port=api_port, api_key=API_KEY, make_default=True)
    return api_port


@pytest.fixture
def pvc(store_dir: Path) -> Invoke:
    """Run ``pvc ARGS...`` in-process; unexpected Python exceptions fail the test with their traceback."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


def command_tree(command: click.Command = cli, path: str = "pvc") -> Iterator[tuple[str, click.Command]]:
    """Every command under ``command`` with its full name (``pvc vm list``), the group first."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from command_tree(sub, f"{path} {name}")
