"""Two lab clusters side by side: a guest on cluster A's Ceph is mirrored to cluster B (whole,
then its changes), a send is cut off by killing A's primary daemon mid-stream, and the VM is
promoted to B, where it runs from B's Ceph while A keeps a mirror."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import rbd

from pvc import processes
from pvc.client.errors import ApiUnreachable
from pvc.lab import cluster_ceph, demo, endpoint
from pvc.lab.guest import DISK_HEARTBEAT, DISK_HEARTBEAT_OFFSET
from pvc.lab.labstate import LabState
from pvc.lab.layout import LabLayout
from pvc.storage import receive
from pvc.storage.client import CephClient
from tests.helpers import wait_for
from tests.lab.lab_run import lab_up, run_lab
from tests.storage.test_image_transfer import image_sha

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PREFIX_A, NET_A = "pvcma", 86
PREFIX_B, NET_B = "pvcmb", 87
POOL = cluster_ceph.POOL
VM, VOLUME = "mirvm", "mirvm-disk"
MIB = 1024 * 1024
#: What changes on A while the VM is stopped: a send of it takes seconds, long enough to cut.
CHANGED = 448 * MIB


@pytest.fixture(scope="module")
def labs():
    with (
        # no fencing while the test kills a daemon and `up` starts it again
        lab_up(
            "pvc-lab-mira-",
            PREFIX_A,
            NET_A,
            True,
            "--peer-net-index",
            str(NET_B),
            "--fence-intervals",
            "30",
            database=False,
        ) as a,
        lab_up(
            "pvc-lab-mirb-",
            PREFIX_B,
            NET_B,
            True,
            "--nodes",
            "1",
            "--peer-net-index",
            str(NET_A),
            database=False,
        ) as b,
    ):
        yield a, b


def destination(layout: LabLayout) -> dict[str, str]:
    """The v1 destination arguments that name lab ``layout``'s API."""
    return {
        "destination_api_uri": f"http://{layout.floating('upstream').ip}:{layout.api_port}/api/v1",
        "destination_api_key": endpoint.api_key(layout) or "",
    }


def sha(layout: LabLayout, snapshot: str | None = None) -> str:
    with CephClient(cluster_ceph.conf_path(layout)) as client:
        return image_sha(client, VOLUME, snapshot, pool=POOL)


def disk_heartbeat(layout: LabLayout) -> int:
    with (
        CephClient(cluster_ceph.conf_path(layout)) as client,
        client.ioctx(POOL) as ioctx,
        rbd.Image(ioctx, VOLUME, read_only=True) as image,
    ):
        beat = DISK_HEARTBEAT.search(image.read(DISK_HEARTBEAT_OFFSET, 64))
    return int(beat.group(1)) if beat else 0


def partial(layout: LabLayout) -> str | None:
    with CephClient(cluster_ceph.conf_path(layout)) as client:
        return receive.is_partial(client, POOL, VOLUME)


def calm(call: Callable[[], Any]) -> Any:
    """``call()``, or None while the API is moving between coordinators."""
    try:
        return call()
    except ApiUnreachable:
        return None


def finished(client, task_id: str, timeout: float = 300) -> dict:
    def done() -> dict | None:
        reply = calm(lambda: client.get(f"/tasks/{task_id}"))
        if reply is None or reply.status != 200:
            return None
        return reply.data if reply.data["state"] in ("SUCCESS", "FAILURE") else None

    return wait_for(done, timeout=timeout, interval=0.5)


def mirror(client, action: str, target: LabLayout) -> dict:
    reply = client.post(f"/vm/{VM}/mirror/{action}", data=destination(target))
    assert reply.status == 202, reply.data
    return finished(client, reply.data["task_id"])


def snapshots(client) -> list[str]:
    return [s["name"] for s in client.get(f"/vm/{VM}").data[0]["snapshots"]]


def primary(client) -> str:
    [node] = [n["name"] for n in client.get("/node").data if n["coordinator_state"] == "primary"]
    return node


def test_a_guest_is_mirrored_survives_a_cut_send_and_is_promoted(labs):
    lab_a, lab_b = labs
    a = endpoint.client(lab_a, read_timeout=600)
    b = endpoint.client(lab_b, read_timeout=600)
    created = a.post("/storage/ceph/volume", data={"volume": VOLUME, "pool": POOL, "size": "512M"})
    assert created.status == 200, created.data
    xml = demo.guest_xml(lab_a, VM, heartbeat_us=200_000, rbd_volume=f"{POOL}/{VOLUME}")
    assert a.post("/vm", data={"xml": xml, "node": "hv1"}).status == 200
    assert a.post(f"/vm/{VM}/state", data={"state": "start", "wait": "true"}).status == 200
    wait_for(lambda: disk_heartbeat(lab_a) > 2, timeout=90)

    # a first mirror: the whole image; then the guest's writes since
    full = mirror(a, "create", lab_b)
    assert full["state"] == "SUCCESS" and "(full," in full["status"], full
    [first] = snapshots(b)
    assert b.get(f"/vm/{VM}").data[0]["state"] == "mirror"
    assert sha(lab_b, first) == sha(lab_a, first)
    wait_for(lambda: disk_heartbeat(lab_a) > 10, timeout=30)
    began = time.monotonic()
    changes = mirror(a, "create", lab_b)
    print(f"\nincremental mirror of a running guest: {time.monotonic() - began:.1f} s, {changes['status']}")
    assert changes["state"] == "SUCCESS" and "(incremental," in changes["status"], changes
    assert changes["result"]["bytes"] <= 8 * MIB
    second = snapshots(b)[-1]
    assert snapshots(b) == [first, second] and sha(lab_b, second) == sha(lab_a, second)

    # a large change, and a send of it cut off by killing the primary's daemon mid-stream
    assert a.post(f"/vm/{VM}/state", data={"state": "stop", "wait": "true"}).status == 200
    with (
        CephClient(cluster_ceph.conf_path(lab_a)) as client,
        client.ioctx(POOL) as ioctx,
        rbd.Image(ioctx, VOLUME) as image,
    ):
        for offset in range(64 * MIB, 64 * MIB + CHANGED, 32 * MIB):
            image.write(os.urandom(32 * MIB), offset)
    sender = primary(a)
    daemon = LabState.load(lab_a.directory).ref(sender, "pvcnoded")
    reply = a.post(f"/vm/{VM}/mirror/create", data=destination(lab_b))
    assert reply.status == 202, reply.data
    wait_for(lambda: partial(lab_b), timeout=60, interval=0.05)
    assert processes.send(daemon, signal.SIGKILL)
    cut = finished(a, reply.data["task_id"])
    print(f"send cut on {sender}: {cut['status']}")
    assert cut["state"] == "FAILURE" and "worker lost" in cut["status"], cut
    assert snapshots(b) == [first, second]  # the mirror stays at its last complete snapshot
    assert sha(lab_b, second) == sha(lab_a, second)
    run_lab(lab_a.directory, "up", "--prefix", PREFIX_A, "--net-index", str(NET_A))

    # promote: the last changes go over, B runs the guest from its own Ceph, A keeps a mirror
    assert a.post(f"/vm/{VM}/state", data={"state": "start", "wait": "true"}).status == 200
    began = time.monotonic()
    promoted = mirror(a, "promote", lab_b)
    print(f"promote: {time.monotonic() - began:.1f} s, {promoted['status']}")
    assert promoted["state"] == "SUCCESS", promoted
    last = snapshots(b)[-1]
    assert last not in (first, second) and sha(lab_b, last) == sha(lab_a, last)
    assert b.get(f"/vm/{VM}").data[0]["state"] == "start"
    assert a.get(f"/vm/{VM}").data[0]["state"] == "mirror"
    assert demo.running_on(lab_b).get(VM) == ["hv1"]
    assert VM not in demo.running_on(lab_a)
    # the guest boots on B and writes its heartbeat into B's copy of the disk
    at_promotion = disk_heartbeat(lab_b)
    seen = wait_for(lambda: (beat := disk_heartbeat(lab_b)) != at_promotion and beat, timeout=90)
    wait_for(lambda: disk_heartbeat(lab_b) >= seen + 3, timeout=30)
