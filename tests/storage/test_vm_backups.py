"""PVC v1 VM backups over real Ceph and ZooKeeper with a real node loop (libvirt's test
driver): answered synchronously as in v1, carried out by the vm.backup task."""

from __future__ import annotations

import os
import time

from pvc.storage import snapshots as rbd_snapshots
from pvc.storage import volumes
from tests.storage.conftest import POOL
from tests.storage.test_image_transfer import MIB, image_sha, write
from tests.storage.test_storage_vm_locks import PREFIX, call, define
from tests.storage.test_vm_snapshots import vm_view


def test_backups_full_and_incremental_then_restore(vm_api, ceph_client, new_volume, tmp_path):
    client, _ = vm_api
    backups = str(tmp_path / "backups")
    disk = new_volume()
    define(client, "backed", disk)
    write(ceph_client, disk, 0, os.urandom(MIB))

    full = call(client, "POST", "/vm/backed/backup", backup_path=backups, retain_snapshot="true")
    assert full.status_code == 200, full.json
    datestring = full.json["message"].split(" as ")[1].split()[0]
    assert full.json["message"].startswith("Backed up VM backed (full) as ")
    assert [s["name"] for s in vm_view(client, "backed")["snapshots"]] == [f"backup_{datestring}"]

    bad = call(client, "POST", "/vm/backed/backup", backup_path=backups, incremental_parent="20000101000000")
    assert bad.status_code == 400 and "has no snapshot of backup 20000101000000" in bad.json["message"]
    outside = call(client, "POST", "/vm/backed/backup", backup_path="/var")
    assert outside.status_code == 400 and "not under a backup path" in outside.json["message"]

    write(ceph_client, disk, 2 * MIB, os.urandom(MIB))
    time.sleep(1.1)  # a backup's datestring has whole seconds
    inc = call(client, "POST", "/vm/backed/backup", backup_path=backups, incremental_parent=datestring)
    assert inc.status_code == 200 and "(incremental)" in inc.json["message"], inc.json
    later = inc.json["message"].split(" as ")[1].split()[0]
    # without retain_snapshot, the incremental's snapshot is gone again
    names = [s["name"] for s in vm_view(client, "backed")["snapshots"]]
    assert names == [f"backup_{datestring}"]
    expected = image_sha(ceph_client, disk)

    refused = client.delete(
        f"{PREFIX}/vm/backed/backup", query_string={"backup_path": backups, "backup_datestring": datestring}
    )
    assert refused.status_code == 400 and f"builds on {datestring}" in refused.json["message"]

    assert client.delete(f"{PREFIX}/vm/backed", query_string={"delete_disks": "true"}).status_code == 200
    assert not volumes.exists(ceph_client, POOL, disk)
    restored = call(client, "POST", "/vm/backed/restore", backup_path=backups, backup_datestring=later)
    assert restored.status_code == 200, restored.json
    assert image_sha(ceph_client, disk) == expected
    assert [s.name for s in rbd_snapshots.list_snapshots(ceph_client, POOL, disk)] == [
        f"backup_{datestring}",
        f"backup_{later}",
    ]
    assert vm_view(client, "backed")["state"] == "stop"

    for stamp in (later, datestring):  # the incremental first, then what it built on
        gone = client.delete(
            f"{PREFIX}/vm/backed/backup", query_string={"backup_path": backups, "backup_datestring": stamp}
        )
        assert gone.status_code == 200, gone.json
    assert os.listdir(tmp_path / "backups" / "backed") == []
