"""The /storage/ceph API over the session's real Ceph and a real ZooKeeper: reads from the
mirror in the cache, writes through the adapter, OSD work as tasks on a real node loop."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
import rbd

from pvc.cluster.storage import benchmark as storage_benchmark
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.storage.osd_tasks import DB_VG_NAME
from pvc.config import StorageSection
from pvc.storage import osds, volumes
from tests.helpers import by_label, metric_samples, wait_for
from tests.integration.conftest import cluster, make_store, store, zk_hosts, zk_server  # noqa: F401
from tests.storage.api_harness import PREFIX, api_over_ceph
from tests.storage.conftest import POOL


@pytest.fixture
def storage_api(make_store, cluster, ceph_lab, ceph_client, tmp_path):  # noqa: F811
    """(test client, context, node): an API with Ceph access, node hv1 primary with storage."""
    # each with its own least-privilege cephx key, as pvcapid and pvcnoded have
    settings = StorageSection(**ceph_lab.storage_config("api"), command_timeout=20)
    node = cluster("hv1", ["hv1"], storage=ceph_lab.storage_config("node"), state_dir=str(tmp_path / "hv1"))
    access = StorageAccess(settings)
    try:
        with api_over_ceph(make_store, ceph_client, access, tmp_path / "api") as (client, context):
            yield client, context, node
    finally:
        access.close()


def call(client, method: str, path: str, **params):
    return client.open(f"{PREFIX}{path}", method=method, query_string=params)


def settled(client, path: str, check, timeout: float = 5.0):
    """The JSON of GET ``path`` once ``check`` accepts it (the cache follows writes in ms)."""
    return wait_for(
        lambda: (body := call(client, "GET", path).json) is not None and check(body) and body, timeout
    )


def osd_up(body) -> bool:
    """Whether a ``GET /storage/ceph/osd/<id>`` body (a one-element list) shows the OSD up."""
    return isinstance(body, list) and len(body) == 1 and body[0]["stats"]["up"] == 1


def wait_task(client, task_id: str, timeout: float = 90.0) -> dict:
    return wait_for(
        lambda: (s := call(client, "GET", f"/tasks/{task_id}").json)["state"] in ("SUCCESS", "FAILURE") and s,
        timeout,
    )


def test_status_and_utilization_are_text_reports_of_the_mirror(storage_api):
    client, _, _ = storage_api
    status = call(client, "GET", "/storage/ceph/status")
    assert status.status_code == 200
    body = status.json
    assert body["type"] == "status" and body["primary_node"] == "hv1"
    assert "health: HEALTH_" in body["ceph_data"] and "osd: 1 osds: 1 up, 1 in" in body["ceph_data"]
    util = call(client, "GET", "/storage/ceph/utilization").json
    assert util["type"] == "utilization"
    assert "--- POOLS ---" in util["ceph_data"] and f"\n{POOL} " in util["ceph_data"]


def test_cluster_status_counts_what_the_storage_lists_show(storage_api, unique, ceph_client):
    client, _, _ = storage_api
    volume = unique("st")
    assert call(client, "POST", f"/storage/ceph/volume/{POOL}/{volume}", size="8M").status_code == 200
    assert call(client, "POST", f"/storage/ceph/snapshot/{POOL}/{volume}/s1").status_code == 200
    util = ceph_client.mon_command("df")["stats"]

    def consistent(status):
        osds = call(client, "GET", "/storage/ceph/osd").json
        return (
            status["pools"] == len(call(client, "GET", "/storage/ceph/pool").json)
            and status["volumes"] == len(call(client, "GET", "/storage/ceph/volume").json) >= 1
            and status["snapshots"] == len(call(client, "GET", "/storage/ceph/snapshot").json) >= 1
            and status["osds"] == {"total": len(osds), "up,in": len(osds)}
            and [o["id"] for o in status["detail"]["osd"]] == [o["id"] for o in osds]
            and status["resources"]["disk"]["total"] == util["total_bytes"]
        )

    status = settled(client, "/status", consistent)
    disk = status["resources"]["disk"]
    assert 0 < disk["used"] < disk["total"] and disk["free"] > 0 and 0 < disk["utilization"] < 100

    # /metrics shows the same figures as /status (read until no mirror pass falls between)
    def metrics_agree() -> bool:
        before = call(client, "GET", "/status").json
        metrics = metric_samples(call(client, "GET", "/metrics/resource").get_data(as_text=True))
        if call(client, "GET", "/status").json["resources"]["disk"] != before["resources"]["disk"]:
            return False
        disk = before["resources"]["disk"]
        assert by_label(metrics["pvc_cluster_disk_bytes"], "kind") == {
            kind: disk[kind] for kind in ("total", "used", "free")
        }
        for key in ("pools", "volumes", "snapshots"):
            assert metrics[f"pvc_{key}"] == {(): float(before[key])}, key
        osds = {key: value for key, value in before["osds"].items() if key != "total"}
        assert by_label(metrics["pvc_osds"], "state") == osds
        return True

    wait_for(metrics_agree, timeout=30)


def test_pool_volume_snapshot_lifecycle_and_bad_input(storage_api, unique, ceph_client):
    client, _, _ = storage_api
    pool = unique("apipool")
    assert (
        call(
            client, "POST", "/storage/ceph/pool", pool=pool, pgs=8, replcfg="copies=1,mincopies=1"
        ).status_code
        == 200
    )
    listed = settled(client, "/storage/ceph/pool", lambda b: any(p["name"] == pool for p in b))
    mine = next(p for p in listed if p["name"] == pool)
    assert mine["pgs"] == 8 and mine["volume_count"] == 0 and mine["replication"] == "copies=1,mincopies=1"
    again = call(client, "POST", "/storage/ceph/pool", pool=pool, pgs=8, replcfg="copies=1,mincopies=1")
    assert again.status_code == 400 and "already exists" in again.json["message"]
    bad = call(client, "POST", "/storage/ceph/pool", pool=unique("p"), pgs=8, replcfg="copies=x")
    assert bad.status_code == 400 and bad.json["message"]
    for tier, reason in (("nvme", "no OSD has device class 'nvme'"), ("fast", "tier")):
        refused = call(
            client,
            "POST",
            "/storage/ceph/pool",
            pool=unique("p"),
            pgs=8,
            replcfg="copies=1,mincopies=1",
            tier=tier,
        )
        assert refused.status_code == 400 and reason in refused.json["message"], refused.json
    osd_class = osds.list_osds(ceph_client)[0].device_class
    tiered = unique("tierpool")
    made = call(
        client,
        "POST",
        "/storage/ceph/pool",
        pool=tiered,
        pgs=8,
        replcfg="copies=1,mincopies=1",
        tier=osd_class,
    )
    assert made.status_code == 200 and f"on the {osd_class} tier" in made.json["message"]
    assert call(client, "GET", f"/storage/ceph/pool/{tiered}").json[0]["tier"] == osd_class
    assert (
        call(client, "DELETE", f"/storage/ceph/pool/{tiered}", **{"yes-i-really-mean-it": "yes"}).status_code
        == 200
    )

    vol = unique("vol")
    created = call(client, "POST", "/storage/ceph/volume", volume=vol, pool=pool, size="1G")
    assert created.status_code == 200, created.json
    one = call(client, "GET", f"/storage/ceph/volume/{pool}/{vol}").json
    assert len(one) == 1 and one[0]["stats"]["size"] == "1G" and one[0]["pool"] == pool
    assert call(client, "GET", f"/storage/ceph/pool/{pool}").json[0]["volume_count"] == 1
    huge = call(client, "POST", "/storage/ceph/volume", volume=unique("huge"), pool=pool, size="100T")
    assert huge.status_code == 400 and "free" in huge.json["message"]
    assert (
        call(client, "POST", "/storage/ceph/volume", volume=unique("v"), pool=pool, size="10Q").status_code
        == 400
    )
    assert call(client, "POST", "/storage/ceph/volume", volume=vol, pool=pool, size="1G").status_code == 400

    assert call(client, "PUT", f"/storage/ceph/volume/{pool}/{vol}", new_size="2G").status_code == 200
    assert call(client, "GET", f"/storage/ceph/volume/{pool}/{vol}").json[0]["stats"]["size"] == "2G"
    shrink = call(client, "PUT", f"/storage/ceph/volume/{pool}/{vol}", new_size="1G")
    assert shrink.status_code == 400 and "shrink" in shrink.json["message"]
    renamed = unique("renamed")
    assert call(client, "PUT", f"/storage/ceph/volume/{pool}/{vol}", new_name=renamed).status_code == 200
    assert call(client, "GET", f"/storage/ceph/volume/{pool}/{vol}").status_code == 404
    copy = unique("copy")
    cloned = call(client, "POST", f"/storage/ceph/volume/{pool}/{renamed}/clone", new_volume=copy)
    assert cloned.status_code == 200, cloned.json
    assert call(client, "POST", f"/storage/ceph/volume/{pool}/{renamed}/scan").status_code == 200
    assert call(client, "POST", f"/storage/ceph/volume/{pool}/nothere/scan").status_code == 404

    snap = f"/storage/ceph/snapshot/{pool}/{renamed}"
    assert (
        call(client, "POST", "/storage/ceph/snapshot", snapshot="s1", volume=renamed, pool=pool).status_code
        == 200
    )
    assert call(client, "GET", "/storage/ceph/snapshot", pool=pool).json == [
        {
            "snapshot": "s1",
            "volume": renamed,
            "pool": pool,
            "size": "2G",
            "protected": False,
            "created": call(client, "GET", f"{snap}/s1").json[0]["created"],
        }
    ]
    assert call(client, "PUT", f"{snap}/s1", new_name="s2").status_code == 200
    assert call(client, "GET", f"{snap}/s1").status_code == 404
    assert call(client, "POST", f"{snap}/s2/rollback").status_code == 200
    assert call(client, "POST", f"{snap}/nope/rollback").status_code == 404
    busy = call(client, "DELETE", f"/storage/ceph/volume/{pool}/{renamed}")
    assert busy.status_code == 409 and "snapshots" in busy.json["message"]
    assert call(client, "DELETE", f"{snap}/s2").status_code == 200
    assert call(client, "DELETE", f"/storage/ceph/volume/{pool}/{renamed}").status_code == 200
    assert not volumes.exists(ceph_client, pool, renamed)

    refused = call(client, "DELETE", f"/storage/ceph/pool/{pool}")
    assert refused.status_code == 400 and "yes-i-really-mean-it" in refused.json["message"]
    assert call(client, "GET", f"/storage/ceph/pool/{pool}").status_code == 200
    removed = call(client, "DELETE", f"/storage/ceph/pool/{pool}", **{"yes-i-really-mean-it": "yes"})
    assert removed.status_code == 200
    assert call(client, "GET", f"/storage/ceph/pool/{pool}").status_code == 404
    assert call(client, "GET", "/storage/ceph/volume", pool=pool).json == []
    assert (
        call(client, "DELETE", "/storage/ceph/pool/nothere", **{"yes-i-really-mean-it": "yes"}).status_code
        == 404
    )


def test_a_volume_that_is_a_vm_disk_is_not_removed(storage_api, unique):
    client, _, _ = storage_api
    vol = unique("vmdisk")
    assert call(client, "POST", "/storage/ceph/volume", volume=vol, pool=POOL, size="64M").status_code == 200
    xml = (
        "<domain type='qemu'><name>rbdvm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os><devices>"
        f"<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
        f"<source protocol='rbd' name='{POOL}/{vol}'/><target dev='vda' bus='virtio'/></disk>"
        "</devices></domain>"
    )
    assert client.post(f"{PREFIX}/vm", data={"xml": xml, "node": "hv1"}).status_code == 200
    settled(client, "/vm", lambda b: any(v["name"] == "rbdvm" for v in b))
    refused = call(client, "DELETE", f"/storage/ceph/volume/{POOL}/{vol}")
    assert refused.status_code == 409 and "rbdvm" in refused.json["message"]
    renamed = call(client, "PUT", f"/storage/ceph/volume/{POOL}/{vol}", new_name=unique("x"))
    assert renamed.status_code == 409
    assert call(client, "GET", f"/storage/ceph/volume/{POOL}/{vol}").status_code == 200


def test_osd_list_state_and_cluster_options(storage_api, ceph_client):
    client, _, _ = storage_api
    listed = call(client, "GET", "/storage/ceph/osd").json
    first = listed[0]
    assert first["id"] == "0" and first["stats"]["up"] == 1 and "kb" in first["stats"]
    assert [osd["id"] for osd in call(client, "GET", "/storage/ceph/osd/0").json] == ["0"]  # a list, as v1
    assert call(client, "GET", "/storage/ceph/osd/99").status_code == 404
    assert call(client, "GET", "/storage/ceph/osd/abc").status_code == 404
    assert call(client, "POST", "/storage/ceph/osd/99/state", state="out").status_code == 404
    assert call(client, "POST", "/storage/ceph/osd/0/state", state="sideways").status_code == 400
    try:
        assert call(client, "POST", "/storage/ceph/option", option="noout", action="set").status_code == 200
        assert "noout" in osds.flags(ceph_client)
        bad = call(client, "POST", "/storage/ceph/option", option="nosuchflag", action="set")
        assert bad.status_code == 400 and "noout" in bad.json["message"]
    finally:
        call(client, "POST", "/storage/ceph/option", option="noout", action="unset")
    assert "noout" not in osds.flags(ceph_client)


def test_osd_add_and_remove_run_as_tasks_on_the_node(storage_api, ceph_client):
    client, _, node = storage_api
    unknown = call(client, "POST", "/storage/ceph/osd", node="nonode", device="file", weight=1)
    assert unknown.status_code == 404
    bad = call(client, "POST", "/storage/ceph/osd", node="hv1", device="relative/path", weight=1)
    assert bad.status_code == 400
    assert (
        call(client, "POST", "/storage/ceph/osd", node="hv1", device="file", weight="heavy").status_code
        == 400
    )
    for size in ("tiny", "10M"):  # not a size; smaller than BlueFS needs
        args = {"node": "hv1", "device": "file", "weight": 1, "ext_db_size": size}
        bad_db = call(client, "POST", "/storage/ceph/osd", **args)
        assert bad_db.status_code == 400 and "ext_db_size" in bad_db.json["message"]
    for bad_args in ({"ext_db_ratio": 1.5}, {"device": "/dev/sdx", "osd_count": 2, "ext_db_size": "1G"}):
        args = {"node": "hv1", "device": "file", "weight": 1, **bad_args}
        assert call(client, "POST", "/storage/ceph/osd", **args).status_code == 400, bad_args
    before = set(osds.ids(ceph_client))
    accepted = call(
        client, "POST", "/storage/ceph/osd", node="hv1", device="file", weight=0.01, ext_db_size="300M"
    )
    assert accepted.status_code == 202 and accepted.json["run_on"] == "hv1"
    done = wait_task(client, accepted.json["task_id"])
    assert done["state"] == "SUCCESS", done
    (new_id,) = set(osds.ids(ceph_client)) - before
    (shown,) = settled(client, f"/storage/ceph/osd/{new_id}", osd_up)
    assert shown["node"] == "hv1" and shown["device"] == "file"
    assert node.loop.osds is not None and node.loop.osds.running(new_id)
    # its RocksDB lives on a dedicated DB device of the asked size
    db_device = Path(shown["db_device"])
    assert db_device.name == f"osd.{new_id}" and db_device.stat().st_size == 300 * 2**20
    metadata = ceph_client.mon_command("osd metadata", id=new_id)
    assert metadata["bluefs_dedicated_db"] == "1" and int(metadata["bluefs_db_size"]) == 300 * 2**20

    # replace its device: the same id comes back up on a new device, with a DB of the same size
    unconfirmed = call(client, "POST", f"/storage/ceph/osd/{new_id}", new_device="file")
    assert unconfirmed.status_code == 400
    replacing = call(
        client, "POST", f"/storage/ceph/osd/{new_id}", new_device="file", **{"yes-i-really-mean-it": "yes"}
    )
    assert replacing.status_code == 202 and replacing.json["run_on"] == "hv1"
    done = wait_task(client, replacing.json["task_id"], timeout=180)
    assert done["state"] == "SUCCESS", done
    assert set(osds.ids(ceph_client)) - before == {new_id}
    assert osds.get(ceph_client, new_id).uuid != shown["stats"]["uuid"]  # a new OSD under the old id
    replaced = ceph_client.mon_command("osd metadata", id=new_id)
    assert int(replaced["bluefs_db_size"]) == 300 * 2**20 and db_device.exists()
    settled(client, f"/storage/ceph/osd/{new_id}", osd_up)

    refused = call(client, "DELETE", f"/storage/ceph/osd/{new_id}")
    assert refused.status_code == 400
    removal = call(client, "DELETE", f"/storage/ceph/osd/{new_id}", **{"yes-i-really-mean-it": "yes"})
    assert removal.status_code == 202
    done = wait_task(client, removal.json["task_id"], timeout=180)
    assert done["state"] == "SUCCESS", done
    assert new_id not in osds.ids(ceph_client) and not db_device.exists()
    settled(client, "/storage/ceph/osd", lambda b: all(o["id"] != str(new_id) for o in b))
    assert call(client, "DELETE", "/storage/ceph/osd/0", **{"yes-i-really-mean-it": "yes"}).status_code == 400


def test_upload_raw_and_qcow2_images_into_volumes(storage_api, unique, ceph_client, tmp_path):
    client, _, _ = storage_api
    vol = unique("upl")
    assert call(client, "POST", "/storage/ceph/volume", volume=vol, pool=POOL, size="8M").status_code == 200
    raw = tmp_path / "disk.raw"
    payload = b"PVC-UPLOAD-MARKER\n" + bytes(range(256)) * 4096
    raw.write_bytes(payload)
    path = f"{PREFIX}/storage/ceph/volume/{POOL}/{vol}/upload"
    with raw.open("rb") as handle:
        sent = client.post(
            path,
            query_string={"image_format": "raw", "file_size": len(payload)},
            data={"file": (handle, "disk.raw")},
            content_type="multipart/form-data",
        )
    assert sent.status_code == 200, sent.json
    with ceph_client.ioctx(POOL) as ioctx:
        image = rbd.Image(ioctx, vol, read_only=True)
        assert image.read(0, len(payload)) == payload
        image.close()

    qcow = tmp_path / "disk.qcow2"
    marker = b"QCOW-MARKER\n"
    raw.write_bytes(marker + bytes(1024 * 1024))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True)
    with qcow.open("rb") as handle:
        sent = client.post(
            path,
            query_string={"image_format": "qcow2", "file_size": qcow.stat().st_size},
            data={"file": (handle, "disk.qcow2")},
            content_type="multipart/form-data",
        )
    assert sent.status_code == 200, sent.json
    with ceph_client.ioctx(POOL) as ioctx:
        image = rbd.Image(ioctx, vol, read_only=True)
        assert image.read(0, len(marker)) == marker
        image.close()

    missing = client.post(path, query_string={"image_format": "raw"})
    assert missing.status_code == 400 and "file" in missing.json["message"]
    bad_format = client.post(
        path, query_string={"image_format": "iso"}, data={"file": (io.BytesIO(b"x"), "x")}
    )
    assert bad_format.status_code == 400
    big = tmp_path / "big.raw"
    big.write_bytes(b"\x01" * (9 * 1024 * 1024))
    with big.open("rb") as handle:
        too_big = client.post(
            path,
            query_string={"image_format": "raw", "file_size": big.stat().st_size},
            data={"file": (handle, "big.raw")},
            content_type="multipart/form-data",
        )
    assert too_big.status_code == 400 and "larger" in too_big.json["message"]
    nowhere = client.post(
        f"{PREFIX}/storage/ceph/volume/{POOL}/nothere/upload",
        query_string={"image_format": "raw", "file_size": 1},
        data={"file": (io.BytesIO(b"x"), "x")},
    )
    assert nowhere.status_code == 404


def test_benchmark_runs_as_a_task_and_keeps_its_result(storage_api, monkeypatch):
    client, _, _ = storage_api
    monkeypatch.setattr(storage_benchmark, "RAND_REGION", 8 * 1024 * 1024)
    monkeypatch.setattr(storage_benchmark, "SEQ_REGION", 64 * 1024 * 1024)
    assert call(client, "POST", "/storage/ceph/benchmark", pool="nopool").status_code == 404
    accepted = call(client, "POST", "/storage/ceph/benchmark", pool=POOL, name="apitest")
    assert accepted.status_code == 202 and accepted.json["run_on"] == "hv1"
    assert call(client, "POST", "/storage/ceph/benchmark", pool=POOL, name="apitest").status_code == 400
    done = wait_task(client, accepted.json["task_id"], timeout=180)
    assert done["state"] == "SUCCESS", done
    (job,) = settled(
        client, "/storage/ceph/benchmark", lambda b: b and isinstance(b[0]["benchmark_result"], dict), 10
    )
    assert job["job"] == "apitest" and job["test_format"] == 2
    tests = job["benchmark_result"]["tests"]
    for name in ("rand_write_4K", "seq_write_4M"):
        assert tests[name]["ours"]["iops"] > 0 and tests[name]["raw"]["iops"] > 0 and tests[name]["ratio"] > 0
    assert call(client, "GET", "/storage/ceph/benchmark", job="nosuchjob").status_code == 404


def _lvm(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


@pytest.fixture
def loop_device(tmp_path):
    """A 1 GiB loop device for block-device OSD work (skips where loop devices or LVM are missing)."""
    if (
        not Path("/dev/loop-control").exists()
        or shutil.which("losetup") is None
        or shutil.which("vgs") is None
    ):
        pytest.skip("no loop devices or LVM tools here")
    if _lvm("vgs", DB_VG_NAME).returncode == 0:
        pytest.skip(f"this machine has a volume group {DB_VG_NAME} of its own")
    image = tmp_path / "disk.img"
    with image.open("wb") as handle:
        handle.truncate(2**30)
    attached = _lvm("losetup", "--find", "--show", str(image))
    if attached.returncode != 0:
        pytest.skip(f"cannot attach a loop device: {attached.stderr.strip()}")
    device = attached.stdout.strip()
    try:
        yield device
    finally:
        # only ever the volume group on our own loop device
        if _lvm("pvs", "--noheadings", "-o", "vg_name", device).stdout.strip() == DB_VG_NAME:
            _lvm("vgremove", "--force", "--yes", DB_VG_NAME)
        _lvm("pvremove", "--force", "--force", "--yes", device)
        _lvm("losetup", "--detach", device)


def test_block_device_osd_work_on_a_loop_device(storage_api, ceph_client, loop_device, tmp_path):
    """The block-device paths as far as this machine lets them go: the OSD DB volume group is
    made for real; an OSD with an external DB stops at lvcreate (no device-mapper in this
    kernel) and one without at ceph-volume (no udev here): both fail with the tool's reason
    and leave no OSD and no logical volume behind."""
    client, _, _ = storage_api
    plain_file = tmp_path / "not-a-disk"
    plain_file.write_bytes(b"")
    assert call(client, "POST", "/storage/ceph/osddb", node="hv1", device="file").status_code == 400
    refused = wait_task(
        client,
        call(client, "POST", "/storage/ceph/osddb", node="hv1", device=str(plain_file)).json["task_id"],
    )
    assert refused["state"] == "FAILURE" and "not a block device" in str(refused), refused

    made = call(client, "POST", "/storage/ceph/osddb", node="hv1", device=loop_device)
    assert made.status_code == 202 and made.json["run_on"] == "hv1"
    done = wait_task(client, made.json["task_id"])
    assert done["state"] == "SUCCESS", done
    assert _lvm("pvs", "--noheadings", "-o", "vg_name", loop_device).stdout.strip() == DB_VG_NAME

    before = set(osds.ids(ceph_client))
    for extra, tool in (({"ext_db_size": "300M"}, "lvcreate"), ({}, "ceph-volume")):
        added = call(client, "POST", "/storage/ceph/osd", node="hv1", device=loop_device, weight=1, **extra)
        assert added.status_code == 202, added.json
        failed = wait_task(client, added.json["task_id"])
        assert failed["state"] == "FAILURE" and tool in str(failed), failed
        assert set(osds.ids(ceph_client)) == before
        assert _lvm("lvs", "--noheadings", DB_VG_NAME).stdout.strip() == ""


class _Endless(io.RawIOBase):
    """A body of ``size`` bytes of 0x01 that counts what the server reads of it."""

    def __init__(self, head: bytes, size: int) -> None:
        self.head, self.size, self.served, self.position = head, size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: 0, 1: self.position, 2: self.size}[whence] + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self.size - self.position))
        start = self.position
        buffer[:count] = (self.head[start : start + count] + b"\x01" * count)[:count]
        self.served += count
        self.position += count
        return count


def test_uploads_are_bounded_by_the_volume(storage_api, unique, tmp_path):
    client, context, _ = storage_api
    vol = unique("bnd")
    assert call(client, "POST", "/storage/ceph/volume", volume=vol, pool=POOL, size="4M").status_code == 200
    path = f"{PREFIX}/storage/ceph/volume/{POOL}/{vol}/upload"
    spool = Path(context.state_dir) / "uploads"
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="d"\r\n\r\n'
    chunked = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}

    # declared too long: refused before a byte is read
    huge = _Endless(head, 300 * 1024 * 1024)
    refused = client.post(
        path,
        query_string={"image_format": "qcow2"},
        input_stream=huge,
        content_length=huge.size,
        content_type="multipart/form-data; boundary=xyz",
    )
    assert refused.status_code == 413 and f"{POOL}/{vol}" in refused.json["message"]
    assert huge.served == 0

    # no declared length, raw of unknown size and qcow2: the spool stops at the bound
    for image_format, limit in (("raw", 4 * 1024**2), ("qcow2", 4 * 1024**2 + 65536 + 16 * 1024**2)):
        endless = _Endless(head, 64 * 1024**2)
        cut = client.post(
            path,
            query_string={"image_format": image_format},
            input_stream=endless,
            content_type="multipart/form-data; boundary=xyz",
            environ_overrides=chunked,
        )
        assert cut.status_code == 413 and str(limit) in cut.json["message"], cut.json
        assert endless.served <= limit + 2 * 1024**2
        assert not any(spool.iterdir())  # the partial spool file is gone

    # raw of declared size bigger than the volume: 400 before anything is read or written
    declared = client.post(
        path,
        query_string={"image_format": "raw", "file_size": 5 * 1024**2},
        input_stream=_Endless(head, 5 * 1024**2),
        content_type="multipart/form-data; boundary=xyz",
        environ_overrides=chunked,
    )
    assert declared.status_code == 400 and "larger than volume" in declared.json["message"]
