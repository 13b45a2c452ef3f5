"""Automirror runs (``POST /vm/automirror``) from cluster A to cluster B (see
:mod:`tests.storage.test_vm_mirror_send`): each run sends a new mirror snapshot of the tagged
VMs, and only the newest ``keep_snapshots`` mirror snapshots stay on both clusters."""

from __future__ import annotations

import os
import time

import pytest

from tests.helpers import TEST_API_KEY, wait_for
from tests.storage.test_image_transfer import MIB, image_sha, write
from tests.storage.test_storage_vm_locks import call, define
from tests.storage.test_vm_autobackup import tag
from tests.storage.test_vm_mirror_send import cluster_b  # noqa: F401 (a fixture)
from tests.storage.test_vm_snapshots import run, vm_view


@pytest.fixture
def node_backup(tmp_path, cluster_b) -> dict:  # noqa: F811
    """hv1 mirrors VMs tagged ``automirror`` to cluster B (the default) and keeps two."""
    key_file = tmp_path / "b.key"
    key_file.write_text(TEST_API_KEY + "\n")
    key_file.chmod(0o600)
    (tmp_path / "backups").mkdir()
    return {
        "paths": [str(tmp_path / "backups")],
        "automirror": {
            "destinations": {
                "b": {"uri": cluster_b["url"], "key_file": str(key_file), "pool": cluster_b["pool"]},
                "nowhere": {"uri": "http://127.0.0.1:9/api/v1", "key_file": str(key_file)},
            },
            "default_destination": "b",
            "keep_snapshots": 2,
        },
    }


def names(client, vm: str) -> list[str]:
    return [snap["name"] for snap in vm_view(client, vm)["snapshots"]]


def test_automirror_keeps_the_tagged_vms_mirrored_with_the_newest_snapshots(
    vm_api,
    cluster_b,  # noqa: F811
    ceph_client,
    new_volume,
):
    client, _ = vm_api
    b_client, b_pool = cluster_b["client"], cluster_b["pool"]
    disk = new_volume()
    define(client, "am1", disk)
    define(client, "quiet", new_volume())
    tag(client, "am1", "automirror")

    for number in range(3):
        write(ceph_client, disk, number * MIB, os.urandom(MIB))
        time.sleep(1.1)  # mirror snapshots are named by the second
        done = run(client, "POST", "/vm/automirror")
        assert done["state"] == "SUCCESS", done
        assert [v["vm"] for v in done["result"]["vms"]] == ["am1"]
        kind = "full" if number == 0 else "incremental"
        assert done["result"]["vms"][0]["result"].startswith(kind), done["result"]
    ours = names(client, "am1")
    assert len(ours) == 2 and all(name.startswith("mirror_") for name in ours)
    wait_for(lambda: names(b_client, "am1") == ours, 15)
    assert image_sha(ceph_client, disk, ours[-1], b_pool) == image_sha(ceph_client, disk, ours[-1])
    assert b_client.get("/api/v1/vm/quiet").status_code == 404


def test_automirror_reports_the_vms_it_could_not_mirror(
    vm_api,
    cluster_b,  # noqa: F811
    new_volume,
):
    client, _ = vm_api
    define(client, "lost", new_volume())
    define(client, "unknown", new_volume())
    tag(client, "lost", "automirror:nowhere")
    tag(client, "unknown", "automirror:mars")
    done = run(client, "POST", "/vm/automirror")
    assert done["state"] == "FAILURE", done
    assert "0 of 2 VMs done, 2 failed" in done["status"]
    assert "did not answer" in done["status"] and "'mars', which is not configured" in done["status"]
    assert names(client, "lost") == []  # nothing was taken before the destination answered
    refused = call(client, "POST", "/vm/automirror", email_recipients="x@y.z\nBcc: a@b.c")
    assert refused.status_code == 400
