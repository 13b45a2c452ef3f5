"""VM snapshots exported to files (whole and incremental) and imported back, over real Ceph
and ZooKeeper with a real node loop (libvirt's test driver): the rebuilt volumes hold exactly
what the snapshots held, and bad paths, tampered files and missing parents leave nothing."""

from __future__ import annotations

import json
import os
import shutil

from pvc.state.states import VMState
from pvc.storage import volumes
from tests.storage.conftest import POOL
from tests.storage.test_image_transfer import MIB, image_sha, write
from tests.storage.test_storage_vm_locks import PREFIX, call, define
from tests.storage.test_vm_snapshots import run, vm_view


def test_export_full_and_incremental_then_import_rebuilds_the_vm(vm_api, ceph_client, new_volume, tmp_path):
    client, context = vm_api
    backups = tmp_path / "backups"
    first, second = new_volume(), new_volume()
    define(client, "exported", first, second)
    write(ceph_client, first, 0, b"first" + os.urandom(2 * MIB))
    write(ceph_client, second, 5 * MIB, os.urandom(MIB))
    assert run(client, "POST", "/vm/exported/snapshot", snapshot_name="s1")["state"] == "SUCCESS"
    full = run(client, "POST", "/vm/exported/snapshot/export", snapshot_name="s1", export_path=str(backups))
    assert full["state"] == "SUCCESS", full
    assert full["result"]["type"] == "full" and full["result"]["path"] == str(backups / "exported" / "s1")
    manifest = json.loads((backups / "exported" / "s1" / "manifest.json").read_text())
    assert manifest["type"] == "full" and manifest["parent"] is None and manifest["vm"] == "exported"
    assert [(f["volume"], f["sha256"]) for f in manifest["files"]] == [
        (first, image_sha(ceph_client, first, "s1")),
        (second, image_sha(ceph_client, second, "s1")),
    ]

    write(ceph_client, first, 8 * MIB, os.urandom(MIB))  # 1 MiB changes
    assert run(client, "POST", "/vm/exported/snapshot", snapshot_name="s2")["state"] == "SUCCESS"
    inc = run(
        client,
        "POST",
        "/vm/exported/snapshot/export",
        snapshot_name="s2",
        export_path=str(backups),
        incremental_parent="s1",
    )
    assert inc["state"] == "SUCCESS", inc
    assert inc["result"]["type"] == "incremental" and MIB <= inc["result"]["bytes"] <= 2 * MIB, inc
    expected = {volume: image_sha(ceph_client, volume, "s2") for volume in (first, second)}

    # what an export refuses
    outside = call(client, "POST", "/vm/exported/snapshot/export", snapshot_name="s1", export_path="/tmp")
    assert outside.status_code == 400 and "not under a backup path" in outside.json["message"]
    escape = str(backups / ".." / "elsewhere")
    assert (
        call(
            client, "POST", "/vm/exported/snapshot/export", snapshot_name="s1", export_path=escape
        ).status_code
        == 400
    )
    link = backups / "link"
    link.symlink_to("/etc")
    linked = call(client, "POST", "/vm/exported/snapshot/export", snapshot_name="s1", export_path=str(link))
    assert linked.status_code == 400 and "not under a backup path" in linked.json["message"]
    unknown = call(
        client, "POST", "/vm/exported/snapshot/export", snapshot_name="nope", export_path=str(backups)
    )
    assert unknown.status_code == 400 and "no complete snapshot 'nope'" in unknown.json["message"]
    again = run(client, "POST", "/vm/exported/snapshot/export", snapshot_name="s1", export_path=str(backups))
    assert again["state"] == "FAILURE" and "was exported there already" in again["status"], again
    assert run(client, "POST", "/vm/exported/snapshot", snapshot_name="s3")["state"] == "SUCCESS"
    assert run(client, "POST", "/vm/exported/snapshot", snapshot_name="s4")["state"] == "SUCCESS"
    orphan = run(
        client,
        "POST",
        "/vm/exported/snapshot/export",
        snapshot_name="s4",
        export_path=str(backups),
        incremental_parent="s3",
    )
    assert orphan["state"] == "FAILURE" and "was not exported to" in orphan["status"], orphan
    assert not (backups / "exported" / "s4").exists()

    # an import needs the VM gone
    exists = call(
        client, "POST", "/vm/exported/snapshot/import", snapshot_name="s2", import_path=str(backups)
    )
    assert exists.status_code == 400 and "already exists" in exists.json["message"]
    removed = client.delete(f"{PREFIX}/vm/exported", query_string={"delete_disks": "true"})
    assert removed.status_code == 200 and not volumes.exists(ceph_client, POOL, first), removed.json

    # a tampered file, or a missing parent: nothing is imported
    diff = backups / "exported" / "s2" / f"{POOL}.{first}.diff"
    with open(diff, "ab") as handle:
        handle.write(b"!")
    tampered = run(
        client, "POST", "/vm/exported/snapshot/import", snapshot_name="s2", import_path=str(backups)
    )
    assert tampered["state"] == "FAILURE" and "the manifest says" in tampered["status"], tampered
    os.truncate(diff, diff.stat().st_size - 1)
    shutil.move(backups / "exported" / "s1", tmp_path / "s1-away")
    parentless = run(
        client, "POST", "/vm/exported/snapshot/import", snapshot_name="s2", import_path=str(backups)
    )
    assert parentless["state"] == "FAILURE" and "parent s1" in parentless["status"], parentless
    shutil.move(tmp_path / "s1-away", backups / "exported" / "s1")
    assert client.get(f"{PREFIX}/vm/exported").status_code == 404
    assert not volumes.exists(ceph_client, POOL, first)

    imported = run(
        client, "POST", "/vm/exported/snapshot/import", snapshot_name="s2", import_path=str(backups)
    )
    assert imported["state"] == "SUCCESS", imported
    view = vm_view(client, "exported")
    assert view["state"] == VMState.STOP and [s["name"] for s in view["snapshots"]] == ["s1", "s2"]
    for volume, sha in expected.items():
        assert image_sha(ceph_client, volume) == sha  # the volume as the snapshot held it
        assert image_sha(ceph_client, volume, "s2") == sha
    assert context.cluster.cache.vm(view["uuid"]).meta.name == "exported"
