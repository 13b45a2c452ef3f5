"""The `pvc` CLI against the real API over HTTP, backed by real ZooKeeper and node daemons."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pvc.cli.main import cli
from pvc.client import connections
from pvc.cluster.tasks import actions as task_actions
from pvc.tasks.builtin import sleep
from tests.api.conftest import served_with_cli
from tests.helpers import wait_for

COORDS = ["n1", "n2"]


@pytest.fixture
def live(api_factory, cluster, tmp_path, monkeypatch):
    """An API served on loopback with authentication, two running nodes, a CLI store."""
    _, context = api_factory(auth=True)
    for i, name in enumerate(COORDS, start=1):
        cluster(name, COORDS, index=i)
    runner = CliRunner()

    def pvc(*args: str, expect: int = 0) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result.stdout if expect == 0 else result.output

    def all_running() -> bool:
        nodes = json.loads(pvc("node", "list", "-f", "json"))
        return len(nodes) == 2 and all(n["daemon_state"] == "run" for n in nodes)

    with served_with_cli(context, tmp_path, monkeypatch):
        wait_for(all_running, 10)
        yield pvc, context


def test_status_nodes_and_primary_move(live):
    pvc, _ = live
    status = json.loads(pvc("-q", "cluster", "status", "-f", "json"))
    primary = status["primary_node"]
    assert primary in COORDS and status["nodes"]["total"] == 2
    other = next(n for n in COORDS if n != primary)
    assert "already" in pvc("-q", "node", "primary", primary, "--wait")
    pvc("-q", "node", "primary", other, "--wait")
    assert json.loads(pvc("-q", "node", "info", other, "-f", "json"))["coordinator_state"] == "primary"
    assert sorted(pvc("-q", "node", "list", "-f", "raw").split()) == COORDS
    assert "registered as coordinator" in pvc("-q", "node", "log", "n1", "-l", "50")


def test_maintenance_flush_ready_and_faults(live):
    pvc, context = live
    pvc("-q", "cluster", "maintenance", "on")
    assert json.loads(pvc("-q", "cluster", "status", "-f", "json"))["maintenance"] == "true"
    pvc("-q", "cluster", "maintenance", "off")
    pvc("-q", "node", "flush", "n2", "--wait")
    assert json.loads(pvc("-q", "node", "info", "n2", "-f", "json"))["domain_state"] == "flushed"
    pvc("-q", "node", "ready", "n2", "--wait")
    assert json.loads(pvc("-q", "node", "info", "n2", "-f", "json"))["domain_state"] == "ready"
    from pvc.cluster.faults import actions as faults

    faults.report(context.cluster, "dead_node", "n9", 50, "Node n9 is dead", maintenance=False)
    listed = wait_for(lambda: json.loads(pvc("-q", "cluster", "fault", "list", "-f", "json")), 10)
    assert listed[0]["message"] == "Node n9 is dead"
    pvc("-q", "cluster", "fault", "ack", listed[0]["id"])
    wait_for(lambda: json.loads(pvc("-q", "cluster", "fault", "list", "-f", "json"))[0]["status"] == "ack")


def test_waiting_on_a_task_and_errors(live):
    pvc, context = live
    record = task_actions.submit(context.cluster, sleep, "n1", {"seconds": 1, "steps": 4})
    output = pvc("-q", "cluster", "task", record.id)
    assert "SUCCESS" in output
    missing = pvc("-q", "node", "info", "nosuch", expect=1)
    assert "nosuch" in missing


def test_wrong_key_is_refused(live, tmp_path):
    pvc, _ = live
    port = connections.load_connections()["live"]["port"]
    connections.register_connection("badkey", "127.0.0.1", port=port, api_key="guess")
    assert "not valid" in pvc("-q", "-c", "badkey", "cluster", "status", expect=1)
