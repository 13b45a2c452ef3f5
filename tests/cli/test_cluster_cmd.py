"""``pvc cluster status|maintenance|init|backup|restore|task``."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from pvc.cli.views import cluster_status_pretty
from tests.cli.conftest import Invoke
from tests.cli.fakeapi import FakeApi


def test_status_formats(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    compact = pvc("cluster", "status", "-f", "json")
    assert compact.exit_code == 0
    assert json.loads(compact.stdout) == fake_api.status()
    assert "\n" not in compact.stdout.strip()
    pretty_json = pvc("cluster", "status", "-f", "json-pretty").stdout
    assert pretty_json.startswith('{\n  "cluster_health": {\n    "health": 25')
    pretty = pvc("cluster", "status").stdout
    assert "Cluster health: 25%" in pretty
    assert "Primary node:   hv1" in pretty
    assert "Nodes:          2 (run,ready: 2)" in pretty
    assert "Node hv2 is dead: no keepalive for over 30 s" in pretty
    assert "maintenance on" not in pretty
    short = pvc("cluster", "status", "-f", "short").stdout
    assert "Cluster health: 25%" in short
    assert "hv2    N/A" in short.splitlines()
    assert "Upstream IP" not in short


def test_status_bad_format_rejected(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("cluster", "status", "-f", "raw")
    assert result.exit_code == 2
    assert fake_api.requests == []


def test_maintenance_on_off(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    on = pvc("cluster", "maintenance", "on")
    assert on.exit_code == 0
    assert on.stdout.strip() == "Set cluster maintenance mode to true"
    assert fake_api.calls("POST", "/status")[-1].args == {"state": ["true"]}
    assert fake_api.maintenance is True
    assert "(maintenance on)" in pvc("cluster", "status").stdout
    off = pvc("cluster", "maintenance", "off")
    assert off.exit_code == 0
    assert fake_api.calls("POST", "/status")[-1].args == {"state": ["false"]}
    assert fake_api.maintenance is False


def test_init_prompt_declined(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    result = pvc("cluster", "init", input="n\n")
    assert result.exit_code == 0
    assert "Initialize a new cluster? [y/N]" in result.stderr
    assert result.stdout.strip() == "Aborted."
    assert fake_api.calls("POST", "/initialize") == []
    no_input = pvc("cluster", "init", input="")
    assert no_input.exit_code == 0
    assert "Aborted." in no_input.stdout
    assert fake_api.calls("POST", "/initialize") == []


def test_init_confirmed_by_prompt_yes_and_unsafe(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    accepted = pvc("cluster", "init", input="y\n")
    assert accepted.exit_code == 0
    assert "Successfully initialized" in accepted.stdout
    assert fake_api.calls("POST", "/initialize")[-1].args == {
        "yes-i-really-mean-it": ["yes"],
        "overwrite": ["False"],
    }
    overwrite = pvc("cluster", "init", "-o", "--yes")
    assert overwrite.exit_code == 0
    assert "[y/N]" not in overwrite.output
    assert fake_api.calls("POST", "/initialize")[-1].args["overwrite"] == ["True"]
    unsafe = pvc("-u", "cluster", "init", "--overwrite")
    assert unsafe.exit_code == 0
    assert "[y/N]" not in unsafe.output
    assert len(fake_api.calls("POST", "/initialize")) == 3


def test_backup_to_stdout_and_file(pvc: Invoke, connected: int, fake_api: FakeApi, tmp_path: Path) -> None:
    result = pvc("cluster", "backup")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == fake_api.backup_data
    target = tmp_path / "backup.json"
    written = pvc("cluster", "backup", "-f", str(target))
    assert written.exit_code == 0
    assert written.stdout == ""
    assert json.loads(target.read_text()) == fake_api.backup_data


def test_restore_sends_form_body(pvc: Invoke, connected: int, fake_api: FakeApi, tmp_path: Path) -> None:
    source = tmp_path / "backup.json"
    source.write_text(json.dumps({"/config/primary_node": "hv2", "/nodes": ""}))
    declined = pvc("cluster", "restore", "-f", str(source), input="n\n")
    assert "Aborted." in declined.stdout
    assert fake_api.restored is None
    result = pvc("cluster", "restore", "-f", str(source), "-y")
    assert result.exit_code == 0
    assert "Restore completed successfully" in result.stdout
    call = fake_api.calls("POST", "/restore")[0]
    assert call.args == {"yes-i-really-mean-it": ["yes"]}
    assert "cluster_data" in call.form
    assert json.loads(fake_api.restored) == {"/config/primary_node": "hv2", "/nodes": ""}


def test_restore_rejects_non_json(pvc: Invoke, connected: int, fake_api: FakeApi, tmp_path: Path) -> None:
    source = tmp_path / "broken.json"
    source.write_text("not json")
    result = pvc("cluster", "restore", "-f", str(source), "-y")
    assert result.exit_code == 1
    assert "is not a JSON cluster backup" in result.stderr
    assert fake_api.calls("POST", "/restore") == []


def test_task_list_formats(pvc: Invoke, connected: int) -> None:
    tasks = json.loads(pvc("cluster", "task", "-f", "json").stdout)
    assert tasks == [
        {
            "type": "active",
            "worker": "pvcworker@hv1",
            "id": "1a2b3c4d",
            "function": "osd.add",
            "args": [],
            "kwargs": {"node": "hv1", "device": "/dev/sdb"},
        },
        {
            "type": "pending",
            "worker": "pvcworker@hv2",
            "id": "5e6f7a8b",
            "function": "vm.flush_locks",
            "args": [],
            "kwargs": {"vm": "vm1"},
        },
    ]
    assert pvc("cluster", "task", "-f", "raw").stdout.split() == ["1a2b3c4d", "5e6f7a8b"]
    pretty = pvc("cluster", "task").stdout
    assert "osd.add" in pretty and "pvcworker@hv2" in pretty


def _running(current: int, total: int, status: str) -> dict:
    return {"state": "RUNNING", "current": current, "total": total, "status": status}


def test_task_wait_success(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    fake_api.tasks["abcd1234"] = [
        {"state": "PENDING", "current": 0, "total": 1, "status": "Pending job start"},
        _running(1, 3, "Preparing disk"),
        _running(2, 3, "Creating OSD"),
        {"state": "SUCCESS", "current": 3, "total": 3, "status": "Added OSD 4 on hv1"},
    ]
    result = pvc("cluster", "task", "abcd1234")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "SUCCESS: Added OSD 4 on hv1"
    assert len(fake_api.calls("GET", "/tasks/abcd1234")) == 4
    assert "Added OSD 4 on hv1" in result.stderr and "3/3" in result.stderr
    fake_api.tasks["abcd1234"] = [_running(1, 2, "Working"), {"state": "SUCCESS", "status": "ok"}]
    quiet = pvc("-q", "cluster", "task", "abcd1234")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "SUCCESS: ok\n", "")


def test_task_wait_failure_exits_1(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    fake_api.tasks["dead0001"] = [
        _running(1, 2, "Zapping disk"),
        {"state": "FAILURE", "current": 1, "total": 2, "status": "Device /dev/sdb is in use"},
    ]
    result = pvc("cluster", "task", "dead0001")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == "FAILURE: Device /dev/sdb is in use"


def test_task_no_wait_and_unknown(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    fake_api.tasks["abcd1234"] = [_running(1, 4, "Working")]
    shown = pvc("cluster", "task", "abcd1234", "--no-wait", "-f", "json")
    assert json.loads(shown.stdout) == _running(1, 4, "Working")
    assert "1/4" in pvc("cluster", "task", "abcd1234", "--no-wait").stdout
    unknown = pvc("cluster", "task", "ffff0000")
    assert unknown.exit_code == 1
    assert "No task with ID ffff0000 found" in unknown.stderr


def _rendered(renderable) -> str:
    console = Console(width=120, file=io.StringIO())
    console.print(renderable)
    return console.file.getvalue()


def test_status_resources_show_sizes_and_not_known() -> None:
    disk = {"total": 32212254720, "used": 913403904, "free": 31298850816, "utilization": 2.8356}
    memory = {"total": 2048, "used": 512, "free": 1536, "allocated": 256, "provisioned": 384}
    memory["utilization"] = 25.0
    shown = _rendered(cluster_status_pretty({"resources": {"disk": disk, "memory": memory}}))
    assert "Disk:" in shown and "871.1M used of 30.0G (2.8%)" in shown
    assert "512M used of 2.0G (25.0%); allocated 256M, provisioned 384M" in shown
    unknown = dict.fromkeys(("total", "used", "free", "utilization"), "N/A")
    assert "N/A used of N/A (N/A)" in _rendered(cluster_status_pretty({"resources": {"disk": unknown}}))
