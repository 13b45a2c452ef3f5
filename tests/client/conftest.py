"""Fixtures for the client tests (the CLI tests use them too): an isolated connection store and
short poll intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvc.client import connections, http, waiters

# Environment variables the client reads, cleared so the caller's environment cannot leak into tests.
CLIENT_ENV = [
    "PVC_CONNECTION",
    "PVC_CLIENT_VERIFY_SSL",
    "PVC_CLIENT_DB_PERMS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
]


@pytest.fixture
def cleared_env() -> list[str]:
    """The environment variables :func:`store_dir` clears."""
    return CLIENT_ENV


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cleared_env: list[str]) -> Path:
    """An empty store directory in $PVC_CLIENT_DIR; the local cfgfile points at a missing file."""
    directory = tmp_path / "client"
    monkeypatch.setenv("PVC_CLIENT_DIR", str(directory))
    for name in cleared_env:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(connections, "LOCAL_CFGFILE", str(tmp_path / "etc-pvc" / "pvc.conf"))
    return directory


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorten every poll interval and retry pause so the tests run quickly."""
    monkeypatch.setattr(waiters, "TASK_POLL_INTERVAL", 0.02)
    monkeypatch.setattr(waiters, "NODE_POLL_INTERVAL", 0.02)
    monkeypatch.setattr(waiters, "FOLLOW_INTERVAL", 0.02)
    monkeypatch.setattr(http, "RETRY_BACKOFF", 0.01)
