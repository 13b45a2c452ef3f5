"""Fixtures and helpers shared by the ``pvc vm`` command tests (a fake API with two VMs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pvc.domain_xml import edit as vm_xml
from pvc.domain_xml.parse import load
from tests.cli.fakeapi import serve
from tests.cli.fakeapi_vm import FakeVmApi, build_vm_app


@pytest.fixture(name="fake_api")
def fake_api_fixture() -> FakeVmApi:
    """The fake API with VMs vm1 (running on hv1) and vm2 (stopped on hv2, migrated from hv1)."""
    return FakeVmApi()


@pytest.fixture(name="api_port")
def api_port_fixture(fake_api: FakeVmApi) -> Iterator[int]:
    """Serve the fake API with its VM endpoints."""
    with serve(fake_api, build_vm_app) as port:
        yield port


def stored_xml(fake_api: FakeVmApi, name: str) -> vm_xml.Element:
    """The XML the fake API holds for VM ``name``."""
    return load(fake_api.vms[name]["xml"])


def last_put(fake_api: FakeVmApi, name: str) -> tuple[dict[str, list[str]], vm_xml.Element]:
    """The query and the parsed XML of the last ``PUT /vm/{name}``."""
    call = fake_api.calls("PUT", f"/vm/{name}")[-1]
    return call.args, load(call.form["xml"][0])
