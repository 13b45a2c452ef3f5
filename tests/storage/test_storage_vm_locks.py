"""RBD locks of VM disks over the session's real Ceph: the node's DiskGuard, the VM manager
refusing a start, ``POST /vm/{vm}/locks`` and ``delete_disks`` on a real ZooKeeper with a
real node loop on the libvirt test driver (which never opens the disks: the test holds
the locks a QEMU would)."""

from __future__ import annotations

import threading

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.vm import actions as vm_actions
from pvc.domain_xml import build as domain_xml
from pvc.node.vm_disks import DiskGuard
from pvc.state.states import VMState
from pvc.storage import volumes
from tests.helpers import wait_for
from tests.integration.conftest import (  # noqa: F401
    cluster,
    make_store,
    store,
    test_driver_uri,
    zk_hosts,
    zk_server,
)
from tests.storage.api_harness import PREFIX
from tests.storage.conftest import POOL
from tests.storage.test_storage_disk_locks import leave_advisory_lock, writer

MIB = 1024 * 1024


def vm_xml(name: str, *disks: str, files: tuple[str, ...] = ()) -> str:
    spec = domain_xml.DomainSpec(
        name=name,
        memory_mib=64,
        disks=list(files),
        rbd_disks=[domain_xml.RbdDisk(POOL, disk) for disk in disks],
    )
    return domain_xml.build(spec)


def cookies(ceph_client, volume: str) -> list[str]:
    return [lock.cookie for lock in volumes.locks(ceph_client, POOL, volume)]


def call(client, method: str, path: str, **data):
    return client.open(f"{PREFIX}{path}", method=method, data=data)


def define(client, name: str, *disks: str) -> str:
    response = call(client, "POST", "/vm", xml=vm_xml(name, *disks), node="hv1")
    assert response.status_code == 200, response.json
    return wait_for(lambda: (found := client.get(f"{PREFIX}/vm/{name}").json) and found[0]["uuid"])


def set_state(client, name: str, state: str):
    return call(client, "POST", f"/vm/{name}/state", state=state, wait="true")


def wait_task(client, task_id: str, timeout: float = 30.0) -> dict:
    return wait_for(
        lambda: (s := client.get(f"{PREFIX}/tasks/{task_id}").json)["state"] in ("SUCCESS", "FAILURE") and s,
        timeout,
    )


# -- the node's guard, on its own ------------------------------------------------------------


def test_disk_guard_refuses_a_live_lock_and_clears_stale_ones(ceph_lab, ceph_client, access, new_volume):
    first, second = new_volume(), new_volume()
    xml = vm_xml("guarded", first, second, files=("/var/lib/images/boot.img",))
    guard = DiskGuard(access)
    assert guard.rbd_disks(xml) == [(POOL, first), (POOL, second)]
    assert guard.rbd_disks("<domain") == []
    assert DiskGuard(None).before_start(xml) is None  # a node without Ceph checks nothing
    assert DiskGuard(StorageAccess()).active is False
    assert guard.before_start(vm_xml("files-only", files=("/x.img",))) is None

    assert guard.before_start(xml) is None
    leave_advisory_lock(ceph_lab, second, "dead-qemu")
    with writer(ceph_lab, first):
        (holder,) = volumes.locks(ceph_client, POOL, first)
        reason = guard.before_start(xml)
        assert reason is not None
        assert f"{POOL}/{first}" in reason and holder.address in reason and "live" in reason
        assert cookies(ceph_client, first) == [holder.cookie]  # the live lock is kept
        guard.after_stop(xml)  # keeps live locks too, and does not raise
        assert cookies(ceph_client, first) == [holder.cookie]
    assert cookies(ceph_client, second) == []  # the stale one went on the first look
    leave_advisory_lock(ceph_lab, second, "dead-again")
    assert guard.before_start(xml) is None
    assert cookies(ceph_client, second) == []

    leave_advisory_lock(ceph_lab, first, "left-by-a-stop")
    guard.after_stop(xml)
    assert cookies(ceph_client, first) == []
    missing = vm_xml("missing", "no-such-volume")
    assert guard.before_start(missing) is None  # left for the hypervisor to report
    guard.after_stop(missing)


def test_disk_guard_waits_for_a_live_lock_to_go(ceph_lab, ceph_client, access, new_volume):
    disk = new_volume()
    xml = vm_xml("patient", disk)
    guard = DiskGuard(access)
    with writer(ceph_lab, disk) as image:
        timer = threading.Timer(0.5, image.close)  # the holder goes away while we wait
        timer.start()
        try:
            assert guard.before_start(xml, wait=15) is None
        finally:
            timer.join()
    assert volumes.locks(ceph_client, POOL, disk) == []


# -- the VM manager ------------------------------------------------------------------------


def test_the_vm_manager_refuses_to_start_a_vm_whose_disk_is_locked(vm_api, ceph_lab, ceph_client, new_volume):
    client, context = vm_api
    disk = new_volume()
    uuid = define(client, "locked", disk)
    with writer(ceph_lab, disk):
        refused = set_state(client, "locked", "start")
        assert refused.status_code == 400, refused.json
        assert "locked by a live client" in refused.json["message"]
        placement = context.cluster.cache.vm(uuid).placement
        assert placement.state == VMState.FAIL and not placement.running_on
        assert f"{POOL}/{disk}" in placement.failed_reason and "hv1" in placement.failed_reason
        assert len(volumes.locks(ceph_client, POOL, disk)) == 1

    leave_advisory_lock(ceph_lab, disk, "crashed-qemu")  # a stale lock does not stop a start
    started = set_state(client, "locked", "start")
    assert started.status_code == 200, started.json
    placement = context.cluster.cache.vm(uuid).placement
    assert placement.state == VMState.START and placement.running_on == "hv1"
    assert placement.failed_reason == ""
    assert volumes.locks(ceph_client, POOL, disk) == []

    leave_advisory_lock(ceph_lab, disk, "left-behind")  # cleared once the VM has stopped
    assert set_state(client, "locked", "stop").status_code == 200
    wait_for(lambda: volumes.locks(ceph_client, POOL, disk) == [], 10)


# -- the API -------------------------------------------------------------------------------


def test_flush_locks_frees_a_stopped_vms_disks(vm_api, ceph_lab, ceph_client, new_volume):
    client, _ = vm_api
    first, second = new_volume(), new_volume()
    define(client, "flushme", first, second)
    assert call(client, "POST", "/vm/nosuchvm/locks").status_code == 404

    assert set_state(client, "flushme", "start").status_code == 200
    refused = call(client, "POST", "/vm/flushme/locks")
    assert refused.status_code == 400 and "running" in refused.json["message"]
    assert set_state(client, "flushme", "stop").status_code == 200

    leave_advisory_lock(ceph_lab, first, "dead-node")
    accepted = call(client, "POST", "/vm/flushme/locks")
    assert accepted.status_code == 202, accepted.json
    assert accepted.json["task_name"] == "vm.flush_locks" and accepted.json["run_on"] == "hv1"
    done = wait_task(client, accepted.json["task_id"])
    assert done["state"] == "SUCCESS", done
    assert f"{POOL}/{first}: 1 lock" in done["status"] and f"{POOL}/{second}: 0 locks" in done["status"]
    assert done["result"]["disks"] == {f"{POOL}/{first}": 1, f"{POOL}/{second}": 0}
    assert volumes.locks(ceph_client, POOL, first) == []

    with writer(ceph_lab, second):  # a holder that looks alive is broken too: the VM is stopped
        done = wait_task(client, call(client, "POST", "/vm/flushme/locks").json["task_id"])
        assert done["state"] == "SUCCESS" and f"{POOL}/{second}: 1 lock" in done["status"], done
        assert volumes.locks(ceph_client, POOL, second) == []


def test_remove_with_delete_disks_deletes_the_rbd_volumes(vm_api, ceph_lab, ceph_client, new_volume):
    client, context = vm_api
    stale, busy = new_volume(), new_volume()
    uuid = define(client, "doomed", stale, busy, "never-created")
    with pytest.raises(ClusterError, match="no Ceph storage"):
        vm_actions.remove(context.cluster, uuid, delete_disks=True)
    assert set_state(client, "doomed", "start").status_code == 200

    leave_advisory_lock(ceph_lab, stale, "dead-qemu")  # Ceph's removal would wait on it forever
    with writer(ceph_lab, busy):  # some other client still has this one open
        removed = client.delete(f"{PREFIX}/vm/doomed", query_string={"delete_disks": "true"})
        assert removed.status_code == 200, removed.json
        message = removed.json["message"]
    assert "Removed VM 'doomed'" in message and f"deleted its RBD volumes {POOL}/{stale}" in message
    assert f"could not delete {POOL}/{busy}: " in message and "in use" in message
    assert f"{POOL}/never-created: " in message and "does not exist" in message
    assert client.get(f"{PREFIX}/vm/doomed").status_code == 404
    assert not volumes.exists(ceph_client, POOL, stale)
    assert volumes.exists(ceph_client, POOL, busy)

    kept = new_volume()
    define(client, "keeper", kept)
    plain = client.delete(f"{PREFIX}/vm/keeper")
    assert plain.status_code == 200 and "deleted" not in plain.json["message"]
    assert volumes.exists(ceph_client, POOL, kept)
