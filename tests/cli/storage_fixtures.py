"""Fixtures and helpers shared by the ``pvc storage`` command tests (a fake API with OSDs, pools...)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.fakeapi import serve
from tests.cli.fakeapi_storage import FakeStorageApi, build_storage_app

YES = {"yes-i-really-mean-it": ["yes"]}


@pytest.fixture(name="fake_api")
def fake_api_fixture() -> FakeStorageApi:
    """The fake API with OSDs 0-2, pools vms and ssdpool, three volumes, a snapshot, two benchmarks."""
    return FakeStorageApi()


@pytest.fixture(name="api_port")
def api_port_fixture(fake_api: FakeStorageApi) -> Iterator[int]:
    """Serve the fake API with its storage endpoints."""
    with serve(fake_api, build_storage_app) as port:
        yield port


def table_rows(text: str) -> list[list[str]]:
    """The rows of a table (after its header and dashed rule), split on whitespace."""
    _header, rule, *rows = text.splitlines()
    assert set(rule.replace(" ", "")) == {"-"}, rule
    return [row.split() for row in rows]


def writes(fake_api: FakeStorageApi) -> list[str]:
    """Every request that could change something (anything but GET)."""
    return [f"{r.method} {r.path}" for r in fake_api.requests if r.method != "GET"]
