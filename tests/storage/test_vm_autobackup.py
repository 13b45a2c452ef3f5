"""Autobackup runs over real Ceph (``POST /vm/autobackup``): the rotation of full and
incremental backups, the retention, mount commands, the e-mail report and failures."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from pvc.cluster.vm.backups import snapshot_of
from pvc.cluster.vm.snapshot_files import MANIFEST
from tests.helpers import wait_for
from tests.storage.test_image_transfer import MIB, write
from tests.storage.test_storage_vm_locks import call, define
from tests.storage.test_vm_snapshots import run, vm_view


@pytest.fixture
def node_backup(tmp_path, request) -> dict:
    """hv1 backs VMs tagged ``autobackup`` up under backups/auto: a full backup every second
    run, the newest two full ones kept; mount commands log to ``mount.log`` (an indirect
    parameter adds autobackup settings)."""
    log = tmp_path / "mount.log"
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/mail.args\ncat > {tmp_path}/mail.body\n')
    sendmail.chmod(sendmail.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "backups" / "auto").mkdir(parents=True)
    return {
        "paths": [str(tmp_path / "backups")],
        "sendmail": str(sendmail),
        "email_from": "pvc@test.example",
        "autobackup": {
            "path": str(tmp_path / "backups" / "auto"),
            "tags": ["autobackup"],
            "full_interval": 2,
            "full_retention": 2,
            "mount_commands": [f"sh -c 'echo mount >> {log}'"],
            "unmount_commands": [f"sh -c 'echo unmount >> {log}'"],
            **getattr(request, "param", {}),
        },
    }


def tag(client, vm: str, name: str) -> None:
    assert call(client, "POST", f"/vm/{vm}/tags", action="add", tag=name).status_code == 200


def autobackup(client, **data) -> dict:
    time.sleep(1.1)  # backups are named by the second
    return run(client, "POST", "/vm/autobackup", **data)


def test_autobackup_rotates_full_and_incremental_backups_and_keeps_the_configured_fulls(
    vm_api, ceph_client, new_volume, tmp_path
):
    client, _ = vm_api
    disk = new_volume()
    define(client, "ab1", disk)
    define(client, "untagged", new_volume())
    tag(client, "ab1", "autobackup")
    root = tmp_path / "backups" / "auto" / "ab1"

    made: list[str] = []
    manifests: dict[str, dict] = {}
    for number in range(5):
        write(ceph_client, disk, number * MIB, os.urandom(MIB))
        done = autobackup(client, **({"email_recipients": "ops@example.com"} if number == 0 else {}))
        assert done["state"] == "SUCCESS", done
        assert [v["vm"] for v in done["result"]["vms"]] == ["ab1"]
        made.append(sorted(p.name for p in root.iterdir() if p.is_dir())[-1])
        manifests[made[-1]] = json.loads((root / made[-1] / MANIFEST).read_text())
    assert [manifests[name]["type"] for name in made] == ["full", "incremental"] * 2 + ["full"]
    assert manifests[made[1]]["parent"] == made[0] and manifests[made[3]]["parent"] == made[2]

    # two full backups kept, with the incremental on the older one; the first pair is gone
    kept = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert kept == made[2:]
    state = json.loads((root / ".autobackup.json").read_text())["backups"]
    assert [snapshot_of(entry["datestring"]) for entry in state] == made[2:]
    # only the newest full backup's snapshot stays, for the next incremental
    assert [snap["name"] for snap in vm_view(client, "ab1")["snapshots"]] == [made[4]]

    assert (tmp_path / "mount.log").read_text().split() == ["mount", "unmount"] * 5
    assert (tmp_path / "mail.args").read_text().split() == [
        "-i",
        "-f",
        "pvc@test.example",
        "--",
        "ops@example.com",
    ]
    body = (tmp_path / "mail.body").read_text()
    assert "Subject: Autobackup on hv1: 1 of 1 VMs done" in body and "full backup" in body


def test_autobackup_reports_a_vm_that_failed_and_refuses_bad_requests(vm_api, new_volume, tmp_path):
    client, _ = vm_api
    define(client, "good", new_volume())
    define(client, "diskless")
    for vm in ("good", "diskless"):
        tag(client, vm, "autobackup")
    done = autobackup(client, force_full="true")
    assert done["state"] == "FAILURE", done
    assert "1 of 2 VMs done, 1 failed" in done["status"]
    assert "FAILED  diskless" in done["status"] and "done  good: full backup" in done["status"]
    assert len([p for p in (tmp_path / "backups" / "auto" / "good").iterdir() if p.is_dir()]) == 1

    for bad in ("not an address", "a@b.c, evil\nBcc: x@y.z", ",".join(f"u{i}@x.y" for i in range(40))):
        refused = call(client, "POST", "/vm/autobackup", email_recipients=bad)
        assert refused.status_code == 400, bad
    assert not (tmp_path / "mail.args").exists()
    assert Path(tmp_path / "mount.log").read_text().split() == ["mount", "unmount"]


@pytest.mark.parametrize("node_backup", [{"interval": 2, "report_to": ["ops@example.com"]}], indirect=True)
def test_the_primary_runs_autobackup_on_its_schedule(vm_api, new_volume, tmp_path):
    client, _ = vm_api
    define(client, "timed", new_volume())
    tag(client, "timed", "autobackup")
    root = tmp_path / "backups" / "auto" / "timed"
    # the schedule's clock started when hv1 became primary: runs follow every 2 s
    wait_for(lambda: root.is_dir() and len([p for p in root.iterdir() if p.is_dir()]) >= 2, 30)
    assert "Subject: Autobackup on hv1: 1 of 1 VMs done" in (tmp_path / "mail.body").read_text()

    # no run may touch the VM's volume once the test lets it go
    assert call(client, "POST", "/vm/timed/tags", action="remove", tag="autobackup").status_code == 200
    wait_for(lambda: not running_autobackups(client), 30)


def running_autobackups(client) -> list[dict]:
    listed = client.get("/api/v1/tasks").json
    found = [task for by_worker in listed.values() for tasks in by_worker.values() for task in tasks]
    return [task for task in found if task["name"] == "cluster.autobackup"]
