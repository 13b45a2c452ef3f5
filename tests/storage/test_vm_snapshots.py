"""VM snapshots over real Ceph and ZooKeeper, with a real node loop on libvirt's test driver
(which never opens the disks; the lab proves a real guest's data rolled back)."""

from __future__ import annotations

from dataclasses import replace

import rbd

from pvc import tasks
from pvc.cluster.tasks.services import NodeServices
from pvc.cluster.vm import snapshot_tasks
from pvc.state import paths
from pvc.state.records import encode
from pvc.state.vm_snapshots import claim, read_snapshot
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage import volumes
from tests.storage.conftest import POOL
from tests.storage.test_storage_vm_locks import PREFIX, call, define, set_state, wait_task

AGENT = '<channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>'


def write(ceph_client, volume: str, data: bytes) -> None:
    with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, volume) as image:
        image.write(data, 0)


def read(ceph_client, volume: str, length: int) -> bytes:
    with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, volume, read_only=True) as image:
        return image.read(0, length)


def run(client, method: str, path: str, **data) -> dict:
    """The finished task a request queued, with the node it was queued on (``run_on``)."""
    accepted = call(client, method, path, **data)
    assert accepted.status_code == 202, accepted.json
    return {**wait_task(client, accepted.json["task_id"]), "run_on": accepted.json["run_on"]}


def vm_view(client, name: str) -> dict:
    return client.get(f"{PREFIX}/vm/{name}").json[0]


def test_snapshot_then_rollback_restores_every_disk_and_the_xml(vm_api, ceph_client, new_volume):
    client, context = vm_api
    first, second = new_volume(), new_volume()
    uuid = define(client, "snappy", first, second)
    write(ceph_client, first, b"first-before")
    write(ceph_client, second, b"second-before")

    done = run(client, "POST", "/vm/snappy/snapshot", snapshot_name="before")
    assert done["state"] == "SUCCESS", done
    assert done["result"]["consistency"] == "stopped"
    assert done["status"] == "Created snapshot before of VM snappy (2 volume(s), stopped)"
    listed = vm_view(client, "snappy")["snapshots"]
    assert [(s["name"], s["rbd_snapshots"], s["xml_diff_lines"]) for s in listed] == [
        ("before", [f"{POOL}/{first}@before", f"{POOL}/{second}@before"], [])
    ]
    assert client.get(f"{PREFIX}/vm/snappy/snapshot").json == listed
    assert [s.name for s in rbd_snapshots.list_snapshots(ceph_client, POOL, first)] == ["before"]

    # the disks and the XML change after the snapshot
    write(ceph_client, first, b"first-AFTER!")
    write(ceph_client, second, b"second-AFTER!")
    xml = vm_view(client, "snappy")["xml"].replace("<memory unit='MiB'>64", "<memory unit='MiB'>96")
    xml = xml.replace('<memory unit="MiB">64', '<memory unit="MiB">96').replace(">65536<", ">98304<")
    assert call(client, "PUT", "/vm/snappy", xml=xml).status_code == 200
    changed = vm_view(client, "snappy")
    assert changed["memory"] == 96 and changed["snapshots"][0]["xml_diff_lines"]

    done = run(client, "POST", "/vm/snappy/snapshot/rollback", snapshot_name="before")
    assert done["state"] == "SUCCESS", done
    assert read(ceph_client, first, 12) == b"first-before"
    assert read(ceph_client, second, 13) == b"second-before"
    restored = vm_view(client, "snappy")
    assert restored["memory"] == 64 and restored["snapshots"][0]["xml_diff_lines"] == []
    assert context.cluster.cache.vm(uuid).meta.memory_mib == 64

    done = run(client, "DELETE", "/vm/snappy/snapshot", snapshot_name="before")
    assert done["state"] == "SUCCESS", done
    assert vm_view(client, "snappy")["snapshots"] == []
    assert rbd_snapshots.list_snapshots(ceph_client, POOL, first) == []
    assert rbd_snapshots.list_snapshots(ceph_client, POOL, second) == []


def test_bad_requests_are_refused_and_change_nothing(vm_api, ceph_client, new_volume):
    client, _ = vm_api
    disk = new_volume()
    define(client, "careful", disk)
    assert call(client, "POST", "/vm/nosuchvm/snapshot").status_code == 404
    for bad in ("has space", "a/b", "-dash", "x" * 65, "ünï"):
        refused = call(client, "POST", "/vm/careful/snapshot", snapshot_name=bad)
        assert refused.status_code == 400 and "letters, digits" in refused.json["message"], bad
    assert run(client, "POST", "/vm/careful/snapshot", snapshot_name="one")["state"] == "SUCCESS"
    again = call(client, "POST", "/vm/careful/snapshot", snapshot_name="one")
    assert again.status_code == 400 and "already has a snapshot named 'one'" in again.json["message"]
    assert call(client, "DELETE", "/vm/careful/snapshot", snapshot_name="nope").status_code == 404
    assert call(client, "POST", "/vm/careful/snapshot/rollback", snapshot_name="nope").status_code == 404
    assert call(client, "DELETE", "/vm/careful/snapshot").status_code == 400  # the name is required

    # a running VM is not rolled back; its snapshot is taken with the guest paused
    assert set_state(client, "careful", "start").status_code == 200
    refused = call(client, "POST", "/vm/careful/snapshot/rollback", snapshot_name="one")
    assert refused.status_code == 400 and "stop or disable it" in refused.json["message"]
    live = run(client, "POST", "/vm/careful/snapshot", snapshot_name="live")
    assert live["state"] == "SUCCESS" and live["result"]["consistency"] == "crash-consistent", live
    assert live["run_on"] == "hv1" and live["result"]["held_ms"] >= 0
    assert vm_view(client, "careful")["state"] == "start"  # resumed
    assert [s.name for s in rbd_snapshots.list_snapshots(ceph_client, POOL, disk)] == ["one", "live"]

    # a default name is the time
    named = run(client, "POST", "/vm/careful/snapshot")
    assert named["state"] == "SUCCESS" and named["result"]["snapshot"].isdigit(), named
    assert set_state(client, "careful", "stop").status_code == 200


def test_a_snapshot_that_fails_leaves_no_rbd_snapshot_and_no_record(vm_api, ceph_client, new_volume):
    client, context = vm_api
    present = new_volume()
    uuid = define(client, "halfway", present, "never-created")
    failed = run(client, "POST", "/vm/halfway/snapshot", snapshot_name="s1")
    assert failed["state"] == "FAILURE", failed
    assert "never-created" in failed["status"] and "does not exist" in failed["status"]
    assert rbd_snapshots.list_snapshots(ceph_client, POOL, present) == []
    assert not context.cluster.store.exists(paths.domain_snapshot(uuid, "s1"))
    assert vm_view(client, "halfway")["snapshots"] == []


def test_a_lost_creation_is_swept_and_removing_a_vm_with_its_disks_removes_its_snapshots(
    vm_api, ceph_client, access, new_volume
):
    client, context = vm_api
    disk = new_volume()
    uuid = define(client, "lostsnap", disk)
    # a creation whose node died after its first RBD snapshot
    claim(context.cluster.store, uuid, "orphan", "task-1")
    rbd_snapshots.create(ceph_client, POOL, disk, "orphan")
    args = {"domain": uuid, "snapshot_name": "orphan"}
    lost = tasks.TaskRecord(id="task-1", name=snapshot_tasks.CREATE_TASK, run_on="hv9", args=args)
    other = tasks.TaskRecord(id="task-2", name=snapshot_tasks.CREATE_TASK, run_on="hv9", args=args)
    services = NodeServices(storage=access, cluster=context.cluster)
    assert snapshot_tasks.sweep_lost_creation(services, other) is None  # not its record: kept
    assert context.cluster.store.exists(paths.domain_snapshot(uuid, "orphan"))
    assert snapshot_tasks.sweep_lost_creation(services, lost) == "removed the unfinished snapshot orphan"
    assert rbd_snapshots.list_snapshots(ceph_client, POOL, disk) == []
    assert not context.cluster.store.exists(paths.domain_snapshot(uuid, "orphan"))

    assert run(client, "POST", "/vm/lostsnap/snapshot", snapshot_name="kept")["state"] == "SUCCESS"
    removed = client.delete(f"{PREFIX}/vm/lostsnap", query_string={"delete_disks": "true"})
    assert removed.status_code == 200 and f"deleted its RBD volumes {POOL}/{disk}" in removed.json["message"]
    assert not volumes.exists(ceph_client, POOL, disk)
    assert not context.cluster.store.exists(paths.domain_snapshots(uuid))


def test_a_rollback_to_xml_the_allowlist_refuses_changes_nothing(vm_api, ceph_client, new_volume):
    """A snapshot's XML carries no trust of its own (it may have been imported or received):
    a rollback checks it as an operator's change of definition, before touching any disk."""
    client, context = vm_api
    disk = new_volume()
    uuid = define(client, "tampered", disk)
    assert run(client, "POST", "/vm/tampered/snapshot", snapshot_name="old")["state"] == "SUCCESS"
    write(ceph_client, disk, b"written after the snapshot")
    store = context.cluster.store
    record = read_snapshot(store.get, uuid, "old")
    host_disk = (
        '<disk type="block" device="disk"><source dev="/dev/sda"/><target dev="vdz" bus="virtio"/></disk>'
    )
    hostile = replace(record, xml=record.xml.replace("</devices>", f"{host_disk}</devices>"))
    store.set(paths.domain_snapshot(uuid, "old"), encode(hostile), create=False)
    refused = run(client, "POST", "/vm/tampered/snapshot/rollback", snapshot_name="old")
    assert refused["state"] == "FAILURE" and "is refused" in refused["status"], refused
    assert read(ceph_client, disk, 26) == b"written after the snapshot"
    assert "/dev/sda" not in vm_view(client, "tampered")["xml"]
