"""Mirrors between two clusters (``/vm/<vm>/mirror/create|promote``): cluster A (the usual
test cluster, served over HTTP too) and cluster B (see :mod:`tests.storage.test_vm_mirror_send`)."""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

import pytest
import rbd

from pvc import tasks
from pvc.cluster.tasks.services import NodeServices
from pvc.cluster.vm import mirror_hold, mirror_receive, mirrors
from pvc.cluster.vm.queries import resolve
from pvc.cluster.vm.remote_api import RemoteApi
from pvc.domain_xml.policy import XmlPolicy
from pvc.state import paths
from pvc.state.locks import held
from pvc.storage import volumes
from pvc.storage.monitors import read_monitor_hosts
from pvc.tasks import TaskError
from tests.helpers import TEST_API_KEY, by_label, metric_samples, wait_for
from tests.storage.api_harness import PREFIX
from tests.storage.conftest import POOL
from tests.storage.test_image_transfer import MIB, image_sha, write
from tests.storage.test_storage_vm_locks import call, define, set_state
from tests.storage.test_vm_mirror_send import cluster_b, served  # noqa: F401 (a fixture)
from tests.storage.test_vm_snapshots import run, vm_view


def mirror(client, action: str, vm: str, url: str, pool: str, **extra) -> dict:
    data = {"destination_api_uri": url, "destination_api_key": TEST_API_KEY, "destination_storage_pool": pool}
    return run(client, "POST", f"/vm/{vm}/mirror/{action}", **data, **extra)


def snapshot_names(client, vm: str) -> list[str]:
    return [snap["name"] for snap in vm_view(client, vm)["snapshots"]]


def running_vm(vm_api, b: dict, new_volume, name: str) -> tuple:
    """VM ``name`` started on cluster A on a new volume: (A's client, and of cluster ``b``
    its client, pool and URL, the volume)."""
    client, _ = vm_api
    disk = new_volume()
    define(client, name, disk)
    assert set_state(client, name, "start").status_code == 200
    return client, b["client"], b["pool"], b["url"], disk


@pytest.fixture
def mirrored(vm_api, cluster_b, new_volume):  # noqa: F811
    """Start a VM on cluster A and mirror it to B: (A's client, B's client, pool and URL)."""

    def make(name: str) -> tuple:
        client, b_client, b_pool, b_url, _ = running_vm(vm_api, cluster_b, new_volume, name)
        assert mirror(client, "create", name, b_url, b_pool)["state"] == "SUCCESS"
        return client, b_client, b_pool, b_url

    return make


def test_a_mirror_follows_its_vm_and_a_promotion_hands_the_vm_over_and_back(
    vm_api,
    cluster_b,  # noqa: F811
    ceph_client,
    new_volume,
    ceph_lab,
):
    client, context = vm_api
    # as a real pvcapid's: received VM disks may name this cluster's monitors
    context.xml_policy = XmlPolicy(ceph_monitors=read_monitor_hosts(ceph_lab.conf_path))
    b_client, b_pool, b_url = cluster_b["client"], cluster_b["pool"], cluster_b["url"]
    disk = new_volume()
    define(client, "hand", disk)
    write(ceph_client, disk, 0, os.urandom(2 * MIB))
    assert set_state(client, "hand", "start").status_code == 200

    first = mirror(client, "create", "hand", b_url, b_pool)
    assert first["state"] == "SUCCESS" and first["result"]["type"] == "full", first
    name1 = first["result"]["snapshot"]
    assert name1.startswith("mirror_") and snapshot_names(b_client, "hand") == [name1]
    assert vm_view(b_client, "hand")["state"] == "mirror"
    assert image_sha(ceph_client, disk, name1, b_pool) == image_sha(ceph_client, disk, name1)
    # B's summaries count the mirror as what it is: the status and the metrics
    assert b_client.get(f"{PREFIX}/status").json["vms"] == {"total": 1, "mirror": 1}
    metrics = metric_samples(b_client.get(f"{PREFIX}/metrics/resource").get_data(as_text=True))
    assert by_label(metrics["pvc_vms"], "state") == {"mirror": 1}

    write(ceph_client, disk, 8 * MIB, os.urandom(MIB))
    time.sleep(1.1)  # mirror snapshots are named by the second
    second = mirror(client, "create", "hand", b_url, b_pool)
    assert second["state"] == "SUCCESS" and second["result"]["type"] == "incremental", second
    name2 = second["result"]["snapshot"]
    assert second["result"]["bytes"] <= 4 * MIB, second["result"]
    assert snapshot_names(b_client, "hand") == [name1, name2]
    assert image_sha(ceph_client, disk, name2, b_pool) == image_sha(ceph_client, disk, name2)

    # a mirror starts only when forced
    refused = call(b_client, "POST", "/vm/hand/state", state="start")
    assert refused.status_code == 400 and "mirror" in refused.json["message"]

    write(ceph_client, disk, 16 * MIB, b"written before the promotion")
    time.sleep(1.1)
    promoted = mirror(client, "promote", "hand", b_url, b_pool)
    assert promoted["state"] == "SUCCESS", promoted
    last = promoted["result"]["snapshot"]
    assert promoted["result"]["type"] == "incremental" and promoted["result"]["state"] == "start"
    assert vm_view(client, "hand")["state"] == "mirror"
    wait_for(lambda: vm_view(b_client, "hand")["state"] == "start", 15)
    assert image_sha(ceph_client, disk, None, b_pool) == image_sha(ceph_client, disk, last)
    assert image_sha(ceph_client, disk, last, b_pool) == image_sha(ceph_client, disk)

    # and back: B mirrors to A (whose copy is now a mirror sharing the last snapshot), then promotes
    write(ceph_client, disk, 24 * MIB, b"written on cluster B", pool=b_pool)
    with served(client) as a_url:
        time.sleep(1.1)
        back = mirror(b_client, "create", "hand", a_url, POOL)
        assert back["state"] == "SUCCESS" and back["result"]["type"] == "incremental", back
        assert image_sha(ceph_client, disk, back["result"]["snapshot"]) == image_sha(
            ceph_client, disk, back["result"]["snapshot"], b_pool
        )
        time.sleep(1.1)
        home = mirror(b_client, "promote", "hand", a_url, POOL, remove_on_source="true")
        assert home["state"] == "SUCCESS", home
    assert b_client.get(f"{PREFIX}/vm/hand").status_code == 404
    assert not volumes.exists(ceph_client, b_pool, disk)
    wait_for(lambda: vm_view(client, "hand")["state"] == "start", 15)
    with ceph_client.ioctx(POOL) as ioctx, rbd.Image(ioctx, disk, read_only=True) as image:
        assert image.read(24 * MIB, 20) == b"written on cluster B"


def test_mirrors_that_cannot_work_are_refused_and_the_vm_keeps_running(
    vm_api,
    cluster_b,  # noqa: F811
    ceph_client,
    new_volume,
):
    client, b_client, b_pool, b_url, disk = running_vm(vm_api, cluster_b, new_volume, "keep")

    define(b_client, "keep", "elsewhere-disk")
    taken = mirror(client, "promote", "keep", b_url, b_pool)
    assert taken["state"] == "FAILURE" and "is not a mirror" in taken["status"], taken
    assert vm_view(client, "keep")["state"] == "start" and snapshot_names(client, "keep") == []
    assert not volumes.exists(ceph_client, b_pool, disk)
    for bad in ({"destination_api_uri": "file:///etc"}, {"destination_storage_pool": "../x"}):
        data = {"destination_api_uri": b_url, "destination_api_key": TEST_API_KEY, **bad}
        assert call(client, "POST", "/vm/keep/mirror/create", **data).status_code == 400, bad
    assert (
        call(
            client,
            "POST",
            "/vm/nothere/mirror/promote",
            destination_api_uri=b_url,
            destination_api_key=TEST_API_KEY,
        ).status_code
        == 404
    )

    # a mirror that shares no snapshot with the VM here any more
    assert call(b_client, "DELETE", "/vm/keep").status_code == 200
    wait_for(lambda: b_client.get(f"{PREFIX}/vm/keep").status_code == 404, 10)
    made = mirror(client, "create", "keep", b_url, b_pool)
    assert made["state"] == "SUCCESS", made
    removed = run(client, "DELETE", "/vm/keep/snapshot", snapshot_name=made["result"]["snapshot"])
    assert removed["state"] == "SUCCESS", removed
    lost = mirror(client, "promote", "keep", b_url, b_pool)
    assert lost["state"] == "FAILURE" and "shares no snapshot" in lost["status"], lost
    assert vm_view(client, "keep")["state"] == "start"
    assert vm_view(b_client, "keep")["state"] == "mirror"

    # a mirror here is not mirrored further
    refused = call(
        b_client,
        "POST",
        "/vm/keep/mirror/create",
        destination_api_uri=b_url,
        destination_api_key=TEST_API_KEY,
    )
    assert refused.status_code == 400 and "mirror" in refused.json["message"]

    # a mirror changes state only when forced: then it is taken over here
    assert call(b_client, "POST", "/vm/keep/state", state="stop").status_code == 400
    forced = call(b_client, "POST", "/vm/keep/state", state="start", force="true", wait="true")
    assert forced.status_code == 200, forced.json
    assert vm_view(b_client, "keep")["state"] == "start"


def test_a_vm_being_promoted_is_held_and_a_failed_send_starts_it_again(mirrored, vm_api, monkeypatch):
    client, b_client, b_pool, b_url = mirrored("held")
    real_send = mirrors.send_to
    seen: list[dict] = []

    def meddle(*args, **kwargs):
        """The last send of a promotion: the VM is shut down here; someone tries to change it."""
        seen.append(
            {
                "start": call(client, "POST", "/vm/held/state", state="start"),
                "forced": call(client, "POST", "/vm/held/state", state="start", force="true"),
                "remove": client.delete(f"{PREFIX}/vm/held"),
                "state": vm_view(client, "held")["state"],
            }
        )
        if len(seen) == 1:
            raise TaskError("the destination went away")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(mirrors, "send_to", meddle)
    time.sleep(1.1)  # mirror snapshots are named by the second
    failed = mirror(client, "promote", "held", b_url, b_pool)
    assert failed["state"] == "FAILURE" and "the destination went away" in failed["status"], failed
    wait_for(lambda: vm_view(client, "held")["state"] == "start", 15)
    assert vm_view(b_client, "held")["state"] == "mirror"

    time.sleep(1.1)
    promoted = mirror(client, "promote", "held", b_url, b_pool)
    assert promoted["state"] == "SUCCESS", promoted
    for tried in seen:
        for what in ("start", "forced", "remove"):
            reply = tried[what]
            assert reply.status_code == 400 and "being handed over" in reply.json["message"], (
                what,
                reply.json,
            )
        assert tried["state"] == "mirror"
    assert vm_view(client, "held")["state"] == "mirror"
    wait_for(lambda: vm_view(b_client, "held")["state"] == "start", 15)

    # a promotion whose worker was lost: its hold ends, the VM stopped here
    cluster = vm_api[1].cluster
    record = resolve(cluster, "held")
    mirror_hold.hold(cluster, record, "task-lost")
    args = {"domain": record.uuid}
    lost = tasks.TaskRecord(id="task-lost", name=mirrors.PROMOTE_TASK, run_on="hv9", args=args)
    other = tasks.TaskRecord(id="task-other", name=mirrors.PROMOTE_TASK, run_on="hv9", args=args)
    services = NodeServices(cluster=cluster)
    assert mirror_hold.sweep_lost_hold(services, other) is None
    assert "is stopped here and no longer held" in mirror_hold.sweep_lost_hold(services, lost)
    placement = resolve(cluster, "held").placement
    assert (placement.state, placement.held_by) == ("stop", "")


def test_a_take_over_and_the_receives_of_a_mirror_never_overlap(mirrored, cluster_b, monkeypatch):  # noqa: F811
    client, b_client, b_pool, b_url = mirrored("taken")
    monkeypatch.setattr(mirror_receive, "TAKEOVER_WAIT", 0.5)
    monkeypatch.setattr(mirror_receive, "RECEIVE_WAIT", 0.5)
    # B's receive lock of the VM held as a send's write would hold it
    with held(cluster_b["context"].cluster.store, paths.receive_lock("taken"), "a send's write"):
        refused = call(b_client, "POST", "/vm/taken/state", state="start", force="true")
        assert refused.status_code == 409 and "receiving a send right now" in refused.json["message"]
        assert vm_view(b_client, "taken")["state"] == "mirror"
        time.sleep(1.1)  # mirror snapshots are named by the second
        waited = mirror(client, "create", "taken", b_url, b_pool)
        assert waited["state"] == "FAILURE" and "being received by another send" in waited["status"], waited
    # free again: the take-over goes on, and a send after it finds no mirror to write
    taken = call(b_client, "POST", "/vm/taken/state", state="start", force="true", wait="true")
    assert taken.status_code == 200, taken.json
    time.sleep(1.1)
    late = mirror(client, "create", "taken", b_url, b_pool)
    assert late["state"] == "FAILURE" and "is not a mirror" in late["status"], late


def test_copies_a_destination_does_not_confirm_are_named_unverified(
    vm_api,
    cluster_b,  # noqa: F811
    new_volume,
    monkeypatch,
):
    client, _, b_pool, b_url, disk = running_vm(vm_api, cluster_b, new_volume, "olddest")
    confirmed = RemoteApi.send_image

    def unconfirmed(self, *args):
        """A destination that takes the image and answers no CRC-32 (an earlier release)."""
        confirmed(self, *args)
        return False

    monkeypatch.setattr(RemoteApi, "send_image", unconfirmed)
    made = mirror(client, "create", "olddest", b_url, b_pool)
    assert made["state"] == "SUCCESS", made
    assert made["result"]["unverified"] == [f"{b_pool}/{disk}"]
    assert f"confirmed no checksum of {b_pool}/{disk}" in made["result"]["message"], made


def test_a_send_whose_sender_stalls_gives_up_and_frees_the_take_over(
    mirrored,
    cluster_b,  # noqa: F811
    ceph_client,
    monkeypatch,
):
    _, b_client, b_pool, b_url = mirrored("stall")
    monkeypatch.setattr(mirror_receive, "STALL_LIMIT", 3.0)
    monkeypatch.setattr(mirror_receive, "TAKEOVER_WAIT", 0.5)
    address = urlsplit(b_url)
    query = f"pool={b_pool}&volume=stall-extra&snapshot=s1&size={8 * MIB}"
    head = (
        f"POST {address.path}/vm/stall/snapshot/receive/block?{query} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\nX-Api-Key: {TEST_API_KEY}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {8 * MIB}\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=30) as sender:
        sender.sendall(head.encode() + os.urandom(MIB))  # then nothing more: a sender gone quiet
        time.sleep(0.5)
        refused = call(b_client, "POST", "/vm/stall/state", state="start", force="true")
        assert refused.status_code == 409 and "receiving a send right now" in refused.json["message"]
        began = time.monotonic()
        answer = b""
        while chunk := sender.recv(65536):  # the answer, then the server closes
            answer += chunk
        assert time.monotonic() - began < 10
    assert b" 400 " in answer.split(b"\r\n")[0] and b"stopped arriving" in answer, answer[:300]
    assert not volumes.exists(ceph_client, b_pool, "stall-extra")
    taken = call(b_client, "POST", "/vm/stall/state", state="start", force="true")
    assert taken.status_code == 200, taken.json
