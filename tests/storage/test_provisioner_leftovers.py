"""A VM creation whose node dies mid-way: another node's worker pool marks the run lost and
removes what it had made (real ZooKeeper, Ceph and node daemons; libvirt's test driver),
and only that: a VM that reached its start stage, and volumes the run did not make, stay."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from pvc import tasks
from pvc.cluster.provisioner import leftovers
from pvc.cluster.provisioner.build import MADE_BY
from pvc.cluster.vm import actions as vm_actions
from pvc.state.states import VMState
from pvc.storage import volumes
from tests.helpers import wait_for
from tests.storage.conftest import POOL
from tests.storage.provisioner_harness import call, ok, profile

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="install scripts run as pvcprov (needs root)")

SLOW_INSTALL = "def install(vm):\n    import time\n    time.sleep(40)\n"


def _submit(client, name: str, **data) -> str:
    status, body = call(client, "POST", "/provisioner/create", name=name, profile="web", **data)
    assert status == 202, body
    return body["task_id"]


def _task(client, task_id: str) -> dict:
    return call(client, "GET", f"/tasks/{task_id}")[1]


def test_a_creation_whose_node_dies_is_cleaned_up_by_another_node(
    prov_api, prov_primary, prov_node, ceph_client, base_image
):
    client, _ = prov_api
    profile(client, base_image, script=SLOW_INSTALL)
    prov_node("hv2")
    wait_for(lambda: call(client, "GET", "/node/hv2")[0] == 200, 20)
    task_id = _submit(client, "lost1")
    wait_for(lambda: _task(client, task_id)["current"] == 5, 30)  # in the install hook
    assert volumes.get_metadata(ceph_client, POOL, "lost1_sda", MADE_BY) == task_id
    prov_primary.store.stop()  # hv1 dies: its session, and the task's claim, go with it
    lost = wait_for(lambda: (t := _task(client, task_id))["state"] == "FAILURE" and t, 30)
    assert lost["status"] == "worker lost", lost
    try:
        final = wait_for(lambda: "removed what" in str((t := _task(client, task_id)).get("result")) and t, 60)
    except AssertionError:
        raise AssertionError(f"no clean-up reported: {_task(client, task_id)}") from None
    assert "removed what it had made: volume rbd/lost1_sda" in final["result"]["message"]
    assert not volumes.exists(ceph_client, POOL, "lost1_sda")
    assert call(client, "GET", "/vm/lost1")[0] == 404


@pytest.fixture
def stopped_creation(prov_api, prov_primary, base_image):
    """A VM ``lost2`` created and left stopped, and its task's record."""
    client, context = prov_api
    profile(client, base_image)
    task_id = _submit(client, "lost2", start_vm="false")
    wait_for(lambda: _task(client, task_id)["state"] == "SUCCESS", 60)
    record = tasks.get(prov_primary.store, task_id)
    assert record is not None
    return context.cluster, record


def test_a_vm_still_in_provision_goes_with_the_volumes_the_run_made(
    prov_api, prov_primary, ceph_client, stopped_creation
):
    cluster, record = stopped_creation
    services = prov_primary.loop.tasks.services
    uuid = cluster.cache.vm_uuid_by_name("lost2")
    vm_actions.change_placement(cluster, uuid, lambda p: replace(p, state=VMState.PROVISION))
    wait_for(lambda: services.cluster.cache.vm(uuid).placement.state == VMState.PROVISION, 10)
    message = leftovers.sweep_lost(services, record)
    assert message == "removed what it had made: VM lost2, volume rbd/lost2_sda"
    assert call(prov_api[0], "GET", "/vm/lost2")[0] == 404
    assert not volumes.exists(ceph_client, POOL, "lost2_sda")


def test_a_vm_that_reached_its_start_stage_is_kept_with_its_volumes(
    prov_api, prov_primary, ceph_client, stopped_creation
):
    _, record = stopped_creation
    assert leftovers.sweep_lost(prov_primary.loop.tasks.services, record) is None
    assert ok(prov_api[0], "GET", "/vm/lost2")[0]["state"] == "stop"
    assert volumes.exists(ceph_client, POOL, "lost2_sda")


def test_a_volume_another_run_made_is_kept(prov_api, prov_primary, ceph_client, stopped_creation):
    cluster, record = stopped_creation
    vm_actions.remove(cluster, cluster.cache.vm_uuid_by_name("lost2"))  # the volume is used by nobody now
    volumes.set_metadata(ceph_client, POOL, "lost2_sda", MADE_BY, "another-task")
    assert leftovers.sweep_lost(prov_primary.loop.tasks.services, record) is None
    assert volumes.exists(ceph_client, POOL, "lost2_sda")
    volumes.remove(ceph_client, POOL, "lost2_sda")
