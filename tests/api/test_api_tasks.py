"""Tasks through the API: the backup task end to end, progress, listing, cancellation."""

from __future__ import annotations

import json

from pvc.cluster.tasks import actions as task_actions
from pvc.tasks.builtin import sleep
from tests.helpers import wait_for

PREFIX = "/api/v1"


def test_backup_task_runs_on_the_primary_and_writes_the_file(api, cluster):
    client, context = api
    cluster("n1", ["n1"])
    wait_for(lambda: client.get(f"{PREFIX}/status/primary_node").json["primary_node"] == "n1")
    target = context.state_dir / "backups" / "backup.json"
    accepted = client.post(f"{PREFIX}/backup", query_string={"name": "backup.json"})
    assert accepted.status_code == 202
    body = accepted.json
    assert set(body) == {"task_id", "task_name", "run_on"} and body["run_on"] == "n1"
    assert len(body["task_id"]) == 8
    done = wait_for(
        lambda: (
            (s := client.get(f"{PREFIX}/tasks/{body['task_id']}").json)["state"] in ("SUCCESS", "FAILURE")
            and s
        ),
        15,
    )
    assert done["state"] == "SUCCESS", done
    assert done["current"] == done["total"] == 3
    data = json.loads(target.read_text())
    assert "/schema/version" in data and "/nodes/n1" in data
    assert done["result"]["keys"] == len(data)


def test_backup_task_bad_input(api, cluster):
    client, _ = api
    early = client.post(f"{PREFIX}/backup", query_string={"name": "b.json"})
    assert early.status_code == 409  # no primary yet
    cluster("n1", ["n1"])
    wait_for(lambda: client.get(f"{PREFIX}/status/primary_node").json["primary_node"] == "n1")
    for bad in ("../escape.json", "/etc/pvc/pvc.conf", "sub/dir.json", ".hidden"):
        refused = client.post(f"{PREFIX}/backup", query_string={"name": bad})
        assert refused.status_code == 400 and "plain file name" in refused.json["message"], bad


def test_progress_listing_and_cancel(api, cluster):
    client, context = api
    cluster("n1", ["n1"])
    wait_for(lambda: client.get(f"{PREFIX}/status/primary_node").json["primary_node"] == "n1")
    record = task_actions.submit(context.cluster, sleep, "n1", {"seconds": 30, "steps": 60})
    task_id = record.id
    running = wait_for(
        lambda: (
            (s := client.get(f"{PREFIX}/tasks/{task_id}").json)["state"] == "RUNNING"
            and s["current"] > 0
            and s
        ),
        10,
    )
    assert running["total"] == 60
    listing = client.get(f"{PREFIX}/tasks").json
    assert set(listing) == {"active", "reserved", "scheduled"}
    active = listing["active"]["pvcworker@n1"]
    assert [t["id"] for t in active] == [task_id]
    cancelled = client.delete(f"{PREFIX}/tasks/{task_id}")
    assert cancelled.status_code == 200
    final = wait_for(
        lambda: (s := client.get(f"{PREFIX}/tasks/{task_id}").json)["state"] == "FAILURE" and s, 10
    )
    assert "cancel" in final["status"]
    assert client.get(f"{PREFIX}/tasks/nosuch").status_code == 404
    assert client.delete(f"{PREFIX}/tasks/nosuch").status_code == 404
