"""``pvc network sriov pf list``, ``vf list`` and ``vf info`` against the fake API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Invoke
from tests.cli.fakeapi import serve
from tests.cli.fakeapi_sriov import MAC1_UUID, FakeSriovApi, build_sriov_app


@pytest.fixture(name="fake_api")
def fake_api_fixture() -> FakeSriovApi:
    return FakeSriovApi()


@pytest.fixture(name="api_port")
def api_port_fixture(fake_api: FakeSriovApi) -> Iterator[int]:
    with serve(fake_api, build_sriov_app) as port:
        yield port


def _rows(text: str) -> list[list[str]]:
    _header, rule, *rows = text.splitlines()
    assert set(rule.replace(" ", "")) == {"-"}, rule
    return [row.split() for row in rows]


def test_pf_list(pvc: Invoke, connected: int, fake_api: FakeSriovApi) -> None:
    result = pvc("network", "sriov", "pf", "list", "hv1")
    assert result.exit_code == 0, result.output
    assert fake_api.calls("GET", "/sriov/pf/hv1")
    assert result.stdout.splitlines()[0].split() == ["Device", "MTU", "VFs"]
    assert _rows(result.stdout) == [
        ["ens1f0", "9000", "ens1f0v0,", "ens1f0v1,", "ens1f0v2,", "ens1f0v3"],
        ["ens1f1", "1500", "ens1f1v0"],
    ]


def test_pf_list_json_is_what_the_api_sent(pvc: Invoke, connected: int, fake_api: FakeSriovApi) -> None:
    result = pvc("network", "sriov", "pf", "list", "hv1", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == fake_api.sriov["hv1"]["pfs"]
    pretty = pvc("network", "sriov", "pf", "list", "hv1", "--format", "json-pretty")
    assert json.loads(pretty.stdout) == fake_api.sriov["hv1"]["pfs"] and "\n  " in pretty.stdout


def test_a_node_without_functions_says_so(pvc: Invoke, connected: int) -> None:
    assert pvc("network", "sriov", "pf", "list", "hv2").stdout.strip() == "No SR-IOV physical functions."
    assert pvc("network", "sriov", "vf", "list", "hv2").stdout.strip() == "No SR-IOV virtual functions."


def test_vf_list(pvc: Invoke, connected: int, fake_api: FakeSriovApi) -> None:
    result = pvc("network", "sriov", "vf", "list", "hv1")
    assert result.exit_code == 0, result.output
    assert fake_api.calls("GET", "/sriov/vf/hv1")[0].args == {}
    rows = _rows(result.stdout)
    assert [row[0] for row in rows] == ["ens1f0v0", "ens1f0v1", "ens1f0v2", "ens1f0v3", "ens1f1v0"]
    assert rows[0] == [
        "ens1f0v0",
        "ens1f0",
        "1500",
        "52:54:00:01:10:00",
        *("0", "0", "0", "0", "auto", "True", "False", "False"),
        "yes",
        MAC1_UUID,
    ]
    assert rows[2][-2:] == ["no", "N/A"]


def test_vf_list_of_one_pf_sends_it(pvc: Invoke, connected: int, fake_api: FakeSriovApi) -> None:
    result = pvc("network", "sriov", "vf", "list", "hv1", "ens1f1", "-f", "json")
    assert result.exit_code == 0, result.output
    assert fake_api.calls("GET", "/sriov/vf/hv1")[0].args == {"pf": ["ens1f1"]}
    assert [vf["phy"] for vf in json.loads(result.stdout)] == ["ens1f1v0"]


def test_vf_info(pvc: Invoke, connected: int, fake_api: FakeSriovApi) -> None:
    result = pvc("network", "sriov", "vf", "info", "hv1", "ens1f0v1")
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    shown = {key.strip(): value.strip() for key, value in lines.items()}
    assert shown["Device"] == "ens1f0v1" and shown["Physical function"] == "ens1f0"
    assert shown["MAC address"] == "52:54:00:01:10:01" and shown["Link state"] == "auto"
    assert (
        shown["Used"] == "yes"
        and shown["Used by domain"] == fake_api.sriov["hv1"]["vfs"][1]["usage"]["domain"]
    )
    as_json = pvc("network", "sriov", "vf", "info", "hv1", "ens1f0v1", "-f", "json")
    assert json.loads(as_json.stdout) == fake_api.sriov["hv1"]["vfs"][1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pf", "list", "hv9"), "Node 'hv9' not found"),
        (("vf", "list", "hv9"), "Node 'hv9' not found"),
        (("vf", "info", "hv1", "ens1f0v9"), "VF 'ens1f0v9' not found on node 'hv1'"),
    ],
)
def test_unknown_nodes_and_vfs_are_errors(
    pvc: Invoke, connected: int, args: tuple[str, ...], message: str
) -> None:
    result = pvc("network", "sriov", *args)
    assert result.exit_code == 1
    assert message in result.stderr.splitlines()[-1]
