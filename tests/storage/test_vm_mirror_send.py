"""Sending VM snapshots to a second cluster over HTTP: cluster A (the usual test cluster) and
cluster B (its own ZooKeeper tree, node daemon and API served by a real HTTP server) share
the session's Ceph, B keeping its mirrors in a pool of its own."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import uuid
from collections.abc import Iterator

import pytest
import rbd
from werkzeug.serving import make_server

from pvc.config.backup import BackupSection
from pvc.domain_xml.policy import XmlPolicy
from pvc.state.store import Store
from pvc.storage import pools, receive, volumes
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage.monitors import read_monitor_hosts
from tests.helpers import TEST_API_KEY, node_config, zk_credential
from tests.integration.conftest import RunningNode, authenticated_client
from tests.storage.api_harness import PREFIX, api_over_ceph
from tests.storage.conftest import POOL
from tests.storage.test_image_transfer import MIB, image_sha, write
from tests.storage.test_storage_vm_locks import call, define
from tests.storage.test_vm_snapshots import run, vm_view


@contextlib.contextmanager
def served(test_client) -> Iterator[str]:
    """Serve a test client's API over HTTP on a loopback port while in the block; its URL."""
    server = make_server("127.0.0.1", 0, test_client.application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{PREFIX}"
    finally:
        server.shutdown()


@pytest.fixture
def cluster_b(zk_server, ceph_lab, ceph_client, access, test_driver_uri, tmp_path) -> Iterator[dict]:
    """Cluster B: its own ZooKeeper chroot, node hv1 and API at ``url``; mirrors in ``pool``."""
    chroot = f"/b-{uuid.uuid4().hex[:12]}"
    hosts = f"{zk_server}{chroot}"
    client = authenticated_client(zk_server)
    client.start(timeout=10)
    client.ensure_path(chroot)
    client.stop()
    pool = f"mirror{uuid.uuid4().hex[:6]}"
    pools.create(ceph_client, pool, 8, "copies=1,mincopies=1")
    config = node_config(
        "hv1",
        ["hv1"],
        hosts,
        hypervisor_uri=test_driver_uri,
        shutdown_timeout=1.0,
        storage=ceph_lab.storage_config("node"),
        state_dir=str(tmp_path / "b-hv1"),
        backup={"send_destinations": ["*"]},
    )
    node = RunningNode(config, hosts)
    stores: list[Store] = []

    def make_store() -> Store:
        store = Store(hosts, timeout=5.0, credential=zk_credential())
        assert store.start(give_up_after=10)
        stores.append(store)
        return store

    try:
        with api_over_ceph(make_store, ceph_client, access, tmp_path / "b-api") as (test_client, context):
            context.backup = BackupSection(send_destinations=["*"])
            # as a real pvcapid's: VM disks may name this cluster's monitors
            context.xml_policy = XmlPolicy(ceph_monitors=read_monitor_hosts(ceph_lab.conf_path))
            with served(test_client) as url:
                yield {"client": test_client, "context": context, "url": url, "pool": pool}
    finally:
        node.stop()
        for store in stores:
            store.stop()
        node.store.stop()
        pools.remove(ceph_client, pool)


def send(client, vm: str, destination: dict, **extra) -> dict:
    data = {"destination_api_uri": destination["url"], "destination_api_key": TEST_API_KEY}
    data["destination_storage_pool"] = destination["pool"]
    return run(client, "POST", f"/vm/{vm}/snapshot/send", **data, **extra)


def first_batch_only(b_client, pool: str, disk: str, snapshot: str, source: str, filler: bytes):
    """The first batch of a send of ``snapshot`` (1 MiB of ``filler`` at offset 0) and no more:
    a send cut off there."""
    extent = bytes(8) + MIB.to_bytes(8, "big") + filler * (MIB // len(filler))
    return b_client.put(
        f"{PREFIX}/vm/mir/snapshot/receive/block",
        query_string={"pool": pool, "volume": disk, "snapshot": snapshot, "source_snapshot": source},
        data={"object_0": (io.BytesIO(extent), "object_0")},
        content_type="multipart/form-data",
    )


def test_full_then_incremental_send_keeps_an_exact_mirror(vm_api, cluster_b, ceph_client, new_volume):
    client, _ = vm_api
    b_client, b_pool = cluster_b["client"], cluster_b["pool"]
    disk = new_volume()
    define(client, "mir", disk)
    write(ceph_client, disk, 0, os.urandom(3 * MIB))
    assert run(client, "POST", "/vm/mir/snapshot", snapshot_name="s1")["state"] == "SUCCESS"

    full = send(client, "mir", cluster_b, snapshot_name="s1")
    assert full["state"] == "SUCCESS", full
    mirror = b_client.get(f"{PREFIX}/vm/mir").json[0]
    assert mirror["state"] == "mirror" and [s["name"] for s in mirror["snapshots"]] == ["s1"]
    assert f"{b_pool}/{disk}" in mirror["xml"]
    with ceph_client.ioctx(b_pool) as ioctx, rbd.Image(ioctx, disk, "s1", read_only=True) as image:
        assert image.size() == 64 * MIB
    assert image_sha(ceph_client, disk, "s1", b_pool) == image_sha(ceph_client, disk, "s1")
    started = b_client.post(f"{PREFIX}/vm/mir/state", data={"state": "start"})
    assert started.status_code == 400 and "mirror" in started.json["message"]

    write(ceph_client, disk, 10 * MIB, os.urandom(2 * MIB))
    assert run(client, "POST", "/vm/mir/snapshot", snapshot_name="s2")["state"] == "SUCCESS"
    inc = send(client, "mir", cluster_b, snapshot_name="s2", incremental_parent="s1")
    assert inc["state"] == "SUCCESS", inc
    # RBD reports changes per 4 MiB object: the 2 MiB written lie in one of them
    assert 2 * MIB <= inc["result"]["bytes"] <= 4 * MIB, inc["result"]
    assert image_sha(ceph_client, disk, "s2", b_pool) == image_sha(ceph_client, disk, "s2")
    assert [s["name"] for s in b_client.get(f"{PREFIX}/vm/mir").json[0]["snapshots"]] == ["s1", "s2"]

    # a send cut off after a batch: the mirror stays at s2; the next send of s3 is exact
    cut = first_batch_only(b_client, b_pool, disk, "s3", "s2", b"garbage!")
    assert cut.status_code == 200, cut.json
    assert [s["name"] for s in b_client.get(f"{PREFIX}/vm/mir").json[0]["snapshots"]] == ["s1", "s2"]
    assert image_sha(ceph_client, disk, "s2", b_pool) == image_sha(ceph_client, disk, "s2")
    write(ceph_client, disk, 20 * MIB, os.urandom(MIB))
    assert run(client, "POST", "/vm/mir/snapshot", snapshot_name="s3")["state"] == "SUCCESS"
    again = send(client, "mir", cluster_b, snapshot_name="s3", incremental_parent="s2")
    assert again["state"] == "SUCCESS", again
    assert image_sha(ceph_client, disk, "s3", b_pool) == image_sha(ceph_client, disk, "s3")
    assert image_sha(ceph_client, disk, None, b_pool) == image_sha(ceph_client, disk, "s3")

    # another send cut off, then the mirror is taken over: it starts from s3, not the cut-off data
    cut_again = first_batch_only(b_client, b_pool, disk, "s4", "s3", b"halfway!")
    assert cut_again.status_code == 200, cut_again.json
    assert image_sha(ceph_client, disk, None, b_pool) != image_sha(ceph_client, disk, "s3")
    taken = b_client.post(f"{PREFIX}/vm/mir/state", data={"state": "start", "force": "true"})
    assert taken.status_code == 200, taken.json
    assert f"rolled {b_pool}/{disk} back" in taken.json["message"], taken.json
    assert image_sha(ceph_client, disk, None, b_pool) == image_sha(ceph_client, disk, "s3")
    assert receive.is_partial(ceph_client, b_pool, disk) is None


def test_sends_that_cannot_work_are_refused_and_change_nothing(vm_api, cluster_b, ceph_client, new_volume):
    client, _ = vm_api
    b_client = cluster_b["client"]
    disk = new_volume()
    define(client, "lonely", disk)
    assert run(client, "POST", "/vm/lonely/snapshot", snapshot_name="s1")["state"] == "SUCCESS"

    bad_key = run(
        client,
        "POST",
        "/vm/lonely/snapshot/send",
        snapshot_name="s1",
        destination_api_uri=cluster_b["url"],
        destination_api_key="wrong-key",
    )
    assert bad_key["state"] == "FAILURE" and "refused the API key" in bad_key["status"], bad_key
    nothing = run(
        client,
        "POST",
        "/vm/lonely/snapshot/send",
        snapshot_name="s1",
        destination_api_uri="http://127.0.0.1:9/api/v1",
        destination_api_key=TEST_API_KEY,
    )
    assert nothing["state"] == "FAILURE" and "did not answer" in nothing["status"], nothing
    not_pvc = run(
        client,
        "POST",
        "/vm/lonely/snapshot/send",
        snapshot_name="s1",
        destination_api_uri=cluster_b["url"] + "/status",
        destination_api_key=TEST_API_KEY,
    )
    assert not_pvc["state"] == "FAILURE" and "is not a PVC API" in not_pvc["status"], not_pvc
    for bad in ("ftp://x/api", "not a url", "http://"):
        refused = call(
            client,
            "POST",
            "/vm/lonely/snapshot/send",
            snapshot_name="s1",
            destination_api_uri=bad,
            destination_api_key=TEST_API_KEY,
        )
        assert refused.status_code == 400, bad

    # a destination this cluster's configuration does not name: refused at the API edge
    context = vm_api[1]
    allowing_all = context.backup
    context.backup = BackupSection(send_destinations=["http://127.0.0.1:1/api/v1"])
    try:
        for path in ("/vm/lonely/snapshot/send", "/vm/lonely/mirror/create", "/vm/lonely/mirror/promote"):
            unlisted = call(
                client,
                "POST",
                path,
                snapshot_name="s1",
                destination_api_uri=cluster_b["url"],
                destination_api_key=TEST_API_KEY,
            )
            assert unlisted.status_code == 400, (path, unlisted.json)
            assert "backup.send_destinations" in unlisted.json["message"], unlisted.json
    finally:
        context.backup = allowing_all

    # the destination has a VM of that name that is not a mirror
    define(b_client, "lonely", "elsewhere-disk")
    taken = send(client, "lonely", cluster_b, snapshot_name="s1")
    assert taken["state"] == "FAILURE" and "is not a mirror" in taken["status"], taken
    assert not volumes.exists(ceph_client, cluster_b["pool"], disk)

    # the receive endpoints write only volumes received for that very VM
    b_pool, victim = cluster_b["pool"], "victim-disk"
    volumes.create(ceph_client, b_pool, victim, 16 * MIB)
    write(ceph_client, victim, 0, b"precious", pool=b_pool)
    rbd_snapshots.create(ceph_client, b_pool, victim, "s1")
    block = f"{PREFIX}/vm/ghost/snapshot/receive/block"
    spec = {"pool": b_pool, "volume": victim, "snapshot": "s9"}
    overwrite = b_client.post(block, query_string={**spec, "size": 4}, data=b"evil")
    assert overwrite.status_code == 400 and "exists" in overwrite.json["message"], overwrite.json
    extents = b_client.put(
        block,
        query_string={**spec, "source_snapshot": "s1"},
        data={"object_0": (io.BytesIO(bytes(16) + b""), "object_0")},
        content_type="multipart/form-data",
    )
    assert extents.status_code == 400 and "not a disk of a mirror" in extents.json["message"], extents.json
    assert b_client.patch(block, query_string=spec).status_code in (400, 404)
    xml = vm_view(client, "lonely")["xml"].replace("<name>lonely</name>", "<name>ghost</name>")
    xml = xml.replace(f"{POOL}/{disk}", f"{b_pool}/{victim}")
    config = b_client.post(
        f"{PREFIX}/vm/ghost/snapshot/receive/config", query_string={"snapshot": "s1"}, json={"xml": xml}
    )
    assert config.status_code == 400 and "was not received for VM 'ghost'" in config.json["message"], (
        config.json
    )
    assert b_client.get(f"{PREFIX}/vm/ghost").status_code == 404
    assert rbd_snapshots.list_snapshots(ceph_client, b_pool, victim)[0].name == "s1"
    with ceph_client.ioctx(b_pool) as ioctx, rbd.Image(ioctx, victim, read_only=True) as image:
        assert image.read(0, 8) == b"precious"
    volumes.remove(ceph_client, b_pool, victim, with_snapshots=True)

    listed = client.get(f"{PREFIX}/tasks").json
    shown = [t for tasks in listed.get("active", {}).values() for t in tasks]
    assert all(t["kwargs"].get("destination_api_key") in (None, "(hidden)") for t in shown)
