"""``pvc cluster fault list|ack|ack-all|delete|delete-all``."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke
from tests.cli.fakeapi import FakeApi


def test_list_formats_and_sort_key(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    short = pvc("cluster", "fault", "list")
    assert short.exit_code == 0
    lines = short.stdout.splitlines()
    assert lines[0].split() == ["ID", "Status", "Health", "Last", "Reported", "Message"]
    assert lines[2].split()[:3] == ["e5f6a7b8", "new", "-25%"]
    assert "Node hv2 is dead: no keepalive for over 30 s" in lines[3]
    assert "First Reported" not in short.stdout
    assert fake_api.calls("GET", "/faults")[0].args == {"sort_key": ["last_reported"]}
    long = pvc("cluster", "fault", "list", "-f", "long").stdout
    assert "First Reported" in long and "2024-01-01 00:00:00" in long
    data = json.loads(pvc("cluster", "fault", "list", "-f", "json").stdout)
    assert [f["id"] for f in data] == ["e5f6a7b8", "a1b2c3d4"]
    assert pvc("cluster", "fault", "list", "-f", "json-pretty").stdout.startswith("[\n  {\n")


def test_list_one_fault(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("cluster", "fault", "list", "a1b2c3d4", "-f", "json")
    assert [f["id"] for f in json.loads(result.stdout)] == ["a1b2c3d4"]
    assert fake_api.calls("GET", "/faults/a1b2c3d4")


def test_ack_several(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("cluster", "fault", "ack", "a1b2c3d4", "e5f6a7b8")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "Successfully acknowledged fault a1b2c3d4",
        "Successfully acknowledged fault e5f6a7b8",
    ]
    assert [c.path for c in fake_api.calls("PUT")] == ["/faults/a1b2c3d4", "/faults/e5f6a7b8"]
    assert {f["status"] for f in fake_api.faults} == {"ack"}


def test_ack_unknown_fails(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("cluster", "fault", "ack", "a1b2c3d4", "nope")
    assert result.exit_code == 1
    assert "Successfully acknowledged fault a1b2c3d4" in result.stdout
    assert "Error: No fault with ID nope found" in result.stderr
    assert pvc("cluster", "fault", "ack").exit_code == 2


def test_ack_all_confirmation(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    declined = pvc("cluster", "fault", "ack-all", input="n\n")
    assert declined.exit_code == 0
    assert "Acknowledge all current cluster faults? [y/N]" in declined.stderr
    assert declined.stdout.strip() == "Aborted."
    assert fake_api.calls("PUT", "/faults") == []
    done = pvc("cluster", "fault", "ack-all", "-y")
    assert done.exit_code == 0
    assert "Successfully acknowledged all faults" in done.stdout
    assert {f["status"] for f in fake_api.faults} == {"ack"}


def test_delete_and_delete_all(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("cluster", "fault", "delete", "a1b2c3d4")
    assert result.exit_code == 0
    assert fake_api.calls("DELETE", "/faults/a1b2c3d4")
    assert [f["id"] for f in fake_api.faults] == ["e5f6a7b8"]
    assert pvc("cluster", "fault", "delete", "a1b2c3d4").exit_code == 1
    assert pvc("cluster", "fault", "delete-all", input="y\n").exit_code == 0
    assert fake_api.faults == []
    assert "No faults." in pvc("cluster", "fault", "list").stdout
