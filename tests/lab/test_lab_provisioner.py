"""The provisioner in the lab: a VM created from a profile (a copy-on-write clone, real
QEMU) fetches its own user-data from the metadata service on the primary; an OVA made by
the test is uploaded and a VM from it boots on a copy of its disk; the API reaches
Patroni's leader, and keeps serving provisioner reads and writes when the leader's member is
lost (and the member rejoins)."""

from __future__ import annotations

import os
import time

import pytest

from pvc.lab import cluster_ceph, demo, endpoint, provisioning
from pvc.lab.database import leader as database_leader
from pvc.lab.database import member_roles, provisioner_answers
from pvc.lab.guest import metadata_seen
from pvc.lab.layout import LabLayout
from tests.helpers import wait_for
from tests.lab.lab_run import lab_up, run_lab

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PREFIX, NET_INDEX = "pvcp", 79
#: The target: the provisioner API answers again within 30 s of losing the database leader.
TARGET = 30.0
NETWORK = provisioning.LabNetwork(4200, "prov.lab.test", "10.180.0")


@pytest.fixture(scope="module")
def lab():
    with lab_up("pvc-lab-prov-", PREFIX, NET_INDEX) as layout:
        yield layout


def database_faults(api) -> list[str]:
    return [f["message"] for f in api.get("/faults").data if "database" in f["message"]]


def console(layout: LabLayout, name: str) -> str:
    path = demo.serial_log(layout, name)
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_vm_created_from_a_profile_gets_its_user_data_from_the_metadata_service(lab: LabLayout):
    api = endpoint.client(lab, read_timeout=60)
    wait_for(lambda: provisioner_answers(api, "ready"), timeout=120, interval=1)
    provisioning.prepare_clone_profile(api, NETWORK)
    status, took = provisioning.create(api, "prov1")
    assert status["state"] == "SUCCESS", status
    print(f"provisioner create: API call to task done {took:.2f} s; stages {status['result']['stages']}")
    assert status["current"] == status["total"] == 7
    [vm] = api.get("/vm/prov1").data
    assert vm["profile"] == provisioning.PROFILE and vm["type"] == "qemu"
    wait_for(lambda: api.get("/vm/prov1").data[0]["state"] == "start", timeout=30, interval=0.2)
    pool = cluster_ceph.POOL
    [volume] = api.get(f"/storage/ceph/volume/{pool}/prov1_sda").data
    assert volume["stats"]["size_bytes"] == 1024**3  # the clone, grown to the template's size
    parent = {"pool": pool, "volume": provisioning.BASE_VOLUME, "snapshot": provisioning.BASE_SNAPSHOT}
    assert volume["stats"]["parent"] == parent

    def fetched():
        lines, instance_id = metadata_seen(console(lab, "prov1"))
        return (lines, instance_id) if instance_id else None

    lines, instance_id = wait_for(fetched, timeout=180, interval=1)
    assert lines == ["#cloud-config", "hostname: prov1", f"fqdn: prov1.{NETWORK.domain}"]
    assert instance_id == vm["uuid"]
    # an OVA made here, uploaded and started: its guest boots on a copy of the appliance's disk
    profile = provisioning.prepare_ova_profile(api)
    status, took = provisioning.create(api, "ova2", profile)
    assert status["state"] == "SUCCESS", status
    print(f"provisioner create from an OVA: task done {took:.2f} s")
    wait_for(
        lambda: f"LAB-DISK vda {provisioning.OVA_LABEL}" in console(lab, "ova2"), timeout=180, interval=1
    )
    lines, _ = wait_for(lambda: (found := metadata_seen(console(lab, "ova2")))[1] and found, 180, 1)
    assert "hostname: ova2" in lines
    # a create that fails (the name is taken now) leaves nothing behind and says why
    refused = api.post("/provisioner/create", data={"name": "prov1", "profile": provisioning.PROFILE})
    assert refused.status == 400 and "already exists" in refused.message


def test_losing_the_database_leader_keeps_the_provisioner_serving(lab: LabLayout):
    api = endpoint.client(lab, read_timeout=30)
    wait_for(lambda: provisioner_answers(api, "before"), timeout=120, interval=1)
    all_up = ["primary", "replica", "replica"]
    wait_for(lambda: sorted(member_roles(lab).values()) == all_up, timeout=120, interval=1)
    lost = database_leader(lab)
    assert lost in lab.coordinator_names
    # the summaries show the database as it is: three running members, one leading, no fault
    metrics = wait_for(
        lambda: (
            (text := api.get("/metrics").text)
            and 'pvc_database_members{role="replica",state="running"} 2.0' in text
            and text
        ),
        timeout=30,
        interval=1,
    )
    assert 'pvc_database_members{role="primary",state="running"} 1.0' in metrics
    assert "pvc_database_leader 1.0" in metrics
    assert not database_faults(api)
    began = time.monotonic()
    run_lab(lab.directory, "node", "kill", lost, "--service", "patroni")
    wait_for(lambda: provisioner_answers(api, "after"), timeout=60, interval=0.5)
    took = time.monotonic() - began
    print(f"database leader {lost} lost: the provisioner API answered again after {took:.1f} s")
    assert took <= TARGET
    assert database_leader(lab) not in (None, lost)
    # Nothing written before the loss is lost.
    names = [t["name"] for t in api.get("/provisioner/template/storage").data]
    assert {"after", "before"} <= set(names)
    # Its coordinator's member is a fault until it is back.
    wait_for(lambda: any(lost in m for m in database_faults(api)), timeout=90, interval=1)
    # The lost member is started again and rejoins as a replica of the new leader.
    run_lab(lab.directory, "up")
    wait_for(lambda: member_roles(lab).get(lost) == "replica", timeout=120, interval=1)
    wait_for(lambda: not database_faults(api), timeout=60, interval=1)
