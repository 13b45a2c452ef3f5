"""``pvc node list|info|is-primary|primary|secondary|flush|ready|log``."""

from __future__ import annotations

import json

import pytest

from pvc.cli import node as node_module
from tests.cli.conftest import Invoke
from tests.cli.fakeapi import FakeApi


def test_list_formats(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    pretty = pvc("node", "list")
    assert pretty.exit_code == 0
    header, rule, *rows = pretty.stdout.splitlines()
    assert header.split()[:6] == ["Name", "Version", "Health", "Daemon", "Coordinator", "Domain"]
    assert set(rule) == {"-"}
    assert rows[0].split()[:6] == ["hv1", "0.1.0", "N/A", "run", "primary", "ready"]
    assert "32.0G" in rows[0]
    assert pvc("node", "list", "-f", "raw").stdout == "hv1\nhv2\n"
    data = json.loads(pvc("node", "list", "-f", "json").stdout)
    assert [n["name"] for n in data] == ["hv1", "hv2"]
    assert data[0]["memory"]["total"] == 32768
    assert pvc("node", "list", "-f", "json-pretty").stdout.startswith("[\n  {\n")


def test_list_filters_sent_as_query(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("node", "list", "hv", "-ds", "run", "-cs", "secondary", "-vs", "ready", "-f", "raw")
    assert result.stdout.split() == ["hv2"]
    assert fake_api.calls("GET", "/node")[0].args == {
        "limit": ["hv"],
        "daemon_state": ["run"],
        "coordinator_state": ["secondary"],
        "domain_state": ["ready"],
    }
    pvc("node", "list")
    assert fake_api.calls("GET", "/node")[1].args == {}


def test_info_formats_and_default_node(
    pvc: Invoke, connected: int, fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_module.socket, "gethostname", lambda: "hv2.example.org")
    pretty = pvc("node", "info")
    assert pretty.exit_code == 0
    assert "Name:               hv2" in pretty.stdout
    assert "Coordinator state:  secondary" in pretty.stdout
    assert "Health plugin" not in pretty.stdout
    assert fake_api.calls("GET", "/node/hv2")
    assert "Health:             N/A" in pretty.stdout
    assert "eno1" not in pretty.stdout  # interfaces only in the long format
    assert "Health plugin" not in pvc("node", "info", "hv1", "-f", "long").stdout
    fake_api.nodes["hv1"]["health"] = 90
    fake_api.nodes["hv1"]["health_details"] = [
        {"name": "disk", "last_run": 1700000000, "health_delta": 10, "message": "sda: 3 reallocated sectors"}
    ]
    long = pvc("node", "info", "hv1", "-f", "long").stdout
    assert "Health:             90%" in long
    assert "Health plugin" in long and "sda: 3 reallocated sectors" in long and "-10%" in long
    rows = [" ".join(line.split()) for line in long.split("Interface")[1].splitlines()]
    assert rows[0] == "State Speed MTU RX b/s TX b/s Total b/s RX p/s TX p/s Total p/s"
    assert rows[2] == "bond0 up N/A 9000 N/A N/A N/A N/A N/A N/A"
    assert rows[3] == "eno1 up 10000 Mb/s 1500 81920 40960 122880 12 9 21"
    data = json.loads(pvc("node", "info", "hv1", "-f", "json").stdout)
    assert data["name"] == "hv1" and data["coordinator_state"] == "primary"
    fake_api.nodes["hv1"]["interfaces"] = "N/A"  # a node that has sent no keepalive yet
    assert pvc("node", "info", "hv1", "-f", "long").exit_code == 0


def test_is_primary(pvc: Invoke, connected: int) -> None:
    yes = pvc("node", "is-primary", "hv1")
    assert (yes.exit_code, yes.stdout) == (0, "")
    assert pvc("node", "is-primary", "hv2").exit_code == 1


def test_primary_wait_polls_until_settled(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("node", "primary", "hv2", "--wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Setting node hv2 in primary coordinator state."
    assert "Waiting..." in result.stderr and "done." in result.stderr
    assert fake_api.calls("POST", "/node/hv2/coordinator-state")[0].args == {"state": ["primary"]}
    assert len(fake_api.calls("GET", "/node/hv2")) == 3
    assert fake_api.nodes["hv2"]["coordinator_state"] == "primary"
    assert fake_api.nodes["hv1"]["coordinator_state"] == "secondary"


def test_primary_already_does_not_wait(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("node", "primary", "hv1", "-w")
    assert result.exit_code == 0
    assert "already" in result.stdout
    assert fake_api.calls("GET", "/node/hv1") == []
    assert "Waiting" not in result.stderr


def test_secondary_without_wait(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("node", "secondary", "hv1")
    assert result.exit_code == 0
    assert fake_api.calls("POST", "/node/hv1/coordinator-state")[0].args == {"state": ["secondary"]}
    assert fake_api.calls("GET", "/node/hv1") == []
    assert fake_api.nodes["hv1"]["coordinator_state"] == "relinquish"


def test_flush_and_ready_wait(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    flushed = pvc("node", "flush", "hv2", "-w")
    assert flushed.exit_code == 0
    assert fake_api.calls("POST", "/node/hv2/domain-state")[0].args == {"state": ["flush"]}
    assert fake_api.nodes["hv2"]["domain_state"] == "flushed"
    assert len(fake_api.calls("GET", "/node/hv2")) == 3
    ready = pvc("node", "ready", "hv2", "--wait")
    assert ready.exit_code == 0
    assert fake_api.calls("POST", "/node/hv2/domain-state")[1].args == {"state": ["ready"]}
    assert fake_api.nodes["hv2"]["domain_state"] == "ready"


def test_state_change_error(pvc: Invoke, connected: int) -> None:
    result = pvc("node", "primary", "ghost")
    assert result.exit_code == 1
    assert "Error: Node ghost not found" in result.stderr


def test_log_lines(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("node", "log", "hv1")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"line {i}" for i in range(1, 21)]
    assert fake_api.calls("GET", "/node/hv1/log")[0].args == {"lines": ["1000"]}
    last = pvc("node", "log", "hv1", "-l", "3")
    assert last.stdout.splitlines() == ["line 18", "line 19", "line 20"]


def test_log_follow_prints_only_new_lines(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    fake_api.log_batches = [["line 21", "line 22"], [], ["line 23"], []]
    result = pvc("node", "log", "hv1", "--follow", env={"PVC_CLI_FOLLOW_MAX_POLLS": "4"})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"line {i}" for i in range(11, 24)]
    calls = fake_api.calls("GET", "/node/hv1/log")
    assert len(calls) == 5
    assert calls[0].args == {"lines": ["10"]}


def test_info_shows_the_last_fence(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    assert "Last fence" not in pvc("node", "info", "hv2").stdout
    fake_api.nodes["hv2"]["fence"] = {
        "state": "failed",
        "fencer": "hv1",
        "started": 1700000000.0,
        "attempt": 2,
        "steps": ["power off to admin@bmc2:623: no answer", "power state: no answer"],
        "error": "BMC unreachable",
        "recovered": [],
        "stranded": [],
        "done": True,
        "retry_at": 1700000060.0,
    }
    pretty = pvc("node", "info", "hv2").stdout
    assert "Last fence:         failed (try 2) by hv1 at " in pretty
    assert "Fence error:        BMC unreachable" in pretty and "Next fence try" in pretty
    assert "power state: no answer" not in pretty
    assert "power state: no answer" in pvc("node", "info", "hv2", "-f", "long").stdout
