"""The CLI tests' fake SR-IOV endpoints serve what the real API serves for the same functions.

The real API runs over a real ZooKeeper holding the records and VMs of tests/sriov_data.py; the
fake (tests/cli/fakeapi_sriov.py) describes the same functions. Every answer must have the same
keys and types item by item, and the same values but for the VMs' UUIDs.
"""

from __future__ import annotations

import pytest

from tests.cli.fakeapi import API_KEY
from tests.cli.fakeapi_sriov import FakeSriovApi, build_sriov_app
from tests.cli.shapes import shape_errors
from tests.sriov_data import populate

PREFIX = "/api/v1"
PATHS = [
    "/sriov/pf/hv1",
    "/sriov/vf/hv1",
    "/sriov/vf/hv1?pf=ens1f1",
    "/sriov/vf/hv1/ens1f0v0",
    "/sriov/vf/hv1/ens1f0v2",
]


@pytest.fixture
def answers(api):
    client, context = api
    _, commit = populate(context.cluster.store)
    context.cluster.settle(commit)
    fake = build_sriov_app(FakeSriovApi()).test_client()
    found = {}
    for path in PATHS:
        mine = fake.get(PREFIX + path, headers={"X-Api-Key": API_KEY})
        real = client.get(PREFIX + path)
        assert mine.status_code == real.status_code == 200, (path, mine.json, real.json)
        found[path] = (mine.json, real.json)
    return found


def _without_users(items: list[dict]) -> list[dict]:
    return [{**item, "usage": {**item["usage"], "domain": bool(item["usage"]["domain"])}} for item in items]


def test_every_fake_answer_has_the_real_shape_item_by_item(answers) -> None:
    differences = []
    for path, (mine, real) in answers.items():
        assert isinstance(mine, list) and isinstance(real, list) and len(mine) == len(real), path
        for index, (fake_item, real_item) in enumerate(zip(mine, real, strict=True)):
            differences += [f"{path}[{index}]: {error}" for error in shape_errors(fake_item, real_item)]
    assert differences == []


def test_the_fake_serves_the_real_values_but_the_vms_uuids(answers) -> None:
    for path, (mine, real) in answers.items():
        if path.startswith("/sriov/vf"):
            assert _without_users(mine) == _without_users(real), path
        else:
            assert mine == real, path
