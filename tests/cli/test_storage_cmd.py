"""``pvc storage``: status/util reports, benchmarks, pools, volumes (with uploads) and snapshots
(OSDs are in test_storage_osd_cmd)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from pvc.cli.main import cli
from pvc.cli.storage_views import human_bytes, number
from pvc.client import multipart
from tests.cli.conftest import Invoke
from tests.cli.fakeapi_storage import STATUS_TEXT, UTILIZATION_TEXT, FakeStorageApi
from tests.cli.storage_fixtures import YES, api_port_fixture, fake_api_fixture, table_rows, writes  # noqa: F401


def _option(path: str, name: str) -> click.Option:
    command: click.Command = cli
    for word in path.split()[1:]:
        assert isinstance(command, click.Group)
        command = command.commands[word]
    return next(p for p in command.params if isinstance(p, click.Option) and p.name == name)


def test_defaults_match_reference() -> None:
    assert _option("pvc storage osd add", "weight").default == 1.0
    assert _option("pvc storage osd add", "weight").type is click.FLOAT
    assert _option("pvc storage osd add", "osd_count").type is click.INT
    assert _option("pvc storage pool add", "tier").default == "default"
    assert list(_option("pvc storage pool add", "tier").type.choices) == ["default", "hdd", "ssd", "nvme"]
    assert _option("pvc storage pool add", "replcfg").default == "copies=3,mincopies=2"
    assert _option("pvc storage volume upload", "image_format").default == "raw"
    for path in ("benchmark run", "create-db-vg", "osd add", "osd replace", "osd refresh", "osd remove"):
        assert _option(f"pvc storage {path}", "wait_flag").default is True, path


# Reports.


def test_status_and_util_print_the_report(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    status = pvc("storage", "status")
    assert status.exit_code == 0, status.output
    assert status.stdout == STATUS_TEXT
    util = pvc("storage", "util", "-f", "pretty")
    assert util.stdout == UTILIZATION_TEXT
    assert [r.path for r in fake_api.calls("GET")] == ["/storage/ceph/status", "/storage/ceph/utilization"]
    assert pvc("storage", "status", "-f", "json").exit_code == 2


# Pools.


def test_pool_list_formats(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    pretty = pvc("storage", "pool", "list")
    assert pretty.exit_code == 0, pretty.output
    rows = table_rows(pretty.stdout)
    assert rows[1][:10] == [
        "vms",
        "1",
        "default",
        "64",
        "copies=3,mincopies=2",
        "2",
        "1.2G",
        "3.6G",
        "8.4G",
        "12%",
    ]
    assert rows[0][:3] == ["ssdpool", "2", "ssd"]
    assert pvc("storage", "pool", "list", "-f", "raw").stdout == "ssdpool\nvms\n"
    data = json.loads(pvc("storage", "pool", "list", "vm", "-f", "json").stdout)
    assert [p["name"] for p in data] == ["vms"] and data[0]["stats"]["num_objects"] == 310
    assert fake_api.calls("GET", "/storage/ceph/pool")[-1].args == {"limit": ["vm"]}
    fake_api.pools.clear()
    assert pvc("storage", "pool", "list").stdout.strip() == "No pools."


def test_pool_add(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    result = pvc("storage", "pool", "add", "data", "128")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == 'Created RBD pool "data" with 128 PGs'
    assert fake_api.calls("POST", "/storage/ceph/pool")[0].args == {
        "pool": ["data"],
        "pgs": ["128"],
        "replcfg": ["copies=3,mincopies=2"],
        "tier": ["default"],
    }
    pvc("storage", "pool", "add", "fast", "32", "-t", "nvme", "--replcfg", "copies=2,mincopies=1")
    assert fake_api.calls("POST", "/storage/ceph/pool")[1].args == {
        "pool": ["fast"],
        "pgs": ["32"],
        "replcfg": ["copies=2,mincopies=1"],
        "tier": ["nvme"],
    }
    assert fake_api.pools["fast"]["tier"] == "nvme"
    again = pvc("storage", "pool", "add", "data", "128")
    assert again.exit_code == 1 and again.stderr.splitlines()[-1] == 'Error: Pool "data" already exists'
    assert pvc("storage", "pool", "add", "x", "8", "-t", "tape").exit_code == 2
    assert len(fake_api.calls("POST", "/storage/ceph/pool")) == 3


def test_pool_remove_and_set_pgs(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    refused = pvc("storage", "pool", "remove", "vms")
    assert refused.exit_code == 0
    assert "Remove pool vms and destroy all its volumes and data? [y/N]" in refused.stderr
    assert refused.stdout.strip() == "Aborted."
    declined = pvc("storage", "pool", "set-pgs", "vms", "128", input="n\n")
    assert declined.exit_code == 0 and "Change the placement groups of pool vms to 128" in declined.stderr
    assert writes(fake_api) == [] and fake_api.pools["vms"]["pgs"] == 64
    changed = pvc("storage", "pool", "set-pgs", "vms", "128", "-y")
    assert changed.stdout.strip() == 'Set PGs count to 128 for RBD pool "vms"'
    assert fake_api.calls("PUT", "/storage/ceph/pool/vms")[0].args == {"pgs": ["128"]}
    assert fake_api.pools["vms"]["pgs"] == 128
    removed = pvc("-u", "storage", "pool", "remove", "vms")
    assert removed.exit_code == 0, removed.output
    assert removed.stdout.strip() == 'Removed RBD pool "vms" and all volumes'
    assert fake_api.calls("DELETE", "/storage/ceph/pool/vms")[0].args == YES
    assert "vms" not in fake_api.pools and ("vms", "vm1_disk0") not in fake_api.volumes
    gone = pvc("storage", "pool", "remove", "vms", "--yes")
    assert gone.exit_code == 1 and gone.stderr.splitlines()[-1] == 'Error: Pool "vms" not found'


# Volumes.


def test_volume_list_formats(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    pretty = pvc("storage", "volume", "list")
    assert pretty.exit_code == 0, pretty.output
    assert pretty.stdout.splitlines()[0].split()[:4] == ["Name", "Pool", "Size", "Objects"]
    rows = table_rows(pretty.stdout)
    assert [row[:3] for row in rows] == [
        ["scratch", "ssdpool", "512M"],
        ["vm1_disk0", "vms", "10G"],
        ["vm2_disk0", "vms", "20G"],
    ]
    assert rows[1][3:] == ["2560", "4.0M", "1", "2", "layering,exclusive-lock"]
    raw = pvc("storage", "volume", "list", "disk", "-p", "vms", "-f", "raw")
    assert raw.stdout == "vm1_disk0\nvm2_disk0\n"
    assert fake_api.calls("GET", "/storage/ceph/volume")[-1].args == {"limit": ["disk"], "pool": ["vms"]}
    data = json.loads(pvc("storage", "volume", "list", "--pool", "ssdpool", "-f", "json").stdout)
    assert data == [fake_api.volumes[("ssdpool", "scratch")]]
    assert pvc("storage", "volume", "list", "-p", "nothing").stdout.strip() == "No volumes."


def test_volume_add_and_clone(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    added = pvc("storage", "volume", "add", "vms", "vm3_disk0", "10G")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == 'Created RBD volume "vm3_disk0" of size "10G" in pool "vms"'
    assert fake_api.calls("POST", "/storage/ceph/volume")[0].args == {
        "volume": ["vm3_disk0"],
        "pool": ["vms"],
        "size": ["10G"],
        "force": ["false"],
    }
    pvc("storage", "volume", "add", "vms", "big", "2T", "--force")
    assert fake_api.calls("POST", "/storage/ceph/volume")[1].args["force"] == ["true"]
    assert fake_api.volumes[("vms", "big")]["stats"]["size"] == "2T"
    nopool = pvc("storage", "volume", "add", "nope", "x", "1G")
    assert nopool.exit_code == 1 and nopool.stderr.splitlines()[-1] == 'Error: Pool "nope" not found'
    cloned = pvc("storage", "volume", "clone", "vms", "vm1_disk0", "vm1_copy")
    assert cloned.exit_code == 0, cloned.output
    assert cloned.stdout.strip() == 'Cloned RBD volume "vm1_disk0" to "vm1_copy" in pool "vms"'
    assert fake_api.calls("POST", "/storage/ceph/volume/vms/vm1_disk0/clone")[0].args == {
        "new_volume": ["vm1_copy"],
        "force": ["false"],
    }
    pvc("storage", "volume", "clone", "vms", "vm1_disk0", "vm1_copy2", "-f")
    assert fake_api.calls("POST", "/storage/ceph/volume/vms/vm1_disk0/clone")[1].args["force"] == ["true"]
    assert ("vms", "vm1_copy2") in fake_api.volumes


def test_volume_resize_rename_remove(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    for args, question in (
        (["resize", "vms", "vm1_disk0", "20G"], "Resize volume vms/vm1_disk0 to 20G? [y/N]"),
        (["rename", "vms", "vm1_disk0", "vm1_root"], "Rename volume vms/vm1_disk0 to vm1_root? [y/N]"),
        (["remove", "vms", "vm1_disk0"], "Remove volume vms/vm1_disk0 and destroy all its data? [y/N]"),
    ):
        refused = pvc("storage", "volume", *args)
        assert refused.exit_code == 0 and question in refused.stderr, refused.stderr
        assert refused.stdout.strip() == "Aborted."
    assert writes(fake_api) == []
    resized = pvc("storage", "volume", "resize", "vms", "vm1_disk0", "20G", "-y")
    assert resized.stdout.strip() == 'Resized RBD volume "vm1_disk0" to size "20G"'
    pvc("storage", "volume", "resize", "vms", "vm1_disk0", "5G", "-f", "-y")
    renamed = pvc("storage", "volume", "rename", "vms", "vm1_disk0", "vm1_root", "--yes")
    assert renamed.stdout.strip() == 'Renamed RBD volume "vm1_disk0" to "vm1_root" in pool "vms"'
    assert [c.args for c in fake_api.calls("PUT", "/storage/ceph/volume/vms/vm1_disk0")] == [
        {"new_size": ["20G"], "force": ["false"]},
        {"new_size": ["5G"], "force": ["true"]},
        {"new_name": ["vm1_root"]},
    ]
    assert fake_api.volumes[("vms", "vm1_root")]["stats"]["size"] == "5G"
    removed = pvc("-u", "storage", "volume", "remove", "vms", "vm1_root")
    assert removed.stdout.strip() == 'Removed RBD volume "vm1_root" in pool "vms"'
    assert fake_api.calls("DELETE", "/storage/ceph/volume/vms/vm1_root")[0].args == {}
    assert ("vms", "vm1_root") not in fake_api.volumes
    gone = pvc("storage", "volume", "remove", "vms", "vm1_root", "-y")
    assert gone.exit_code == 1
    assert gone.stderr.splitlines()[-1] == 'Error: Volume "vm1_root" not found in pool "vms"'


def test_volume_names_are_quoted_in_paths(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    pvc("storage", "volume", "add", "vms", "odd name", "1G")
    result = pvc("storage", "volume", "remove", "vms", "odd name", "-y")
    assert result.exit_code == 0, result.output
    assert fake_api.calls("DELETE")[0].path == "/storage/ceph/volume/vms/odd name"


# Uploads.


def _image(tmp_path: Path, size: int) -> Path:
    image = tmp_path / "disk image.qcow2"
    image.write_bytes(bytes((i * 7 + i // 256) % 256 for i in range(size)))
    return image


def test_upload_streams_the_exact_bytes(
    pvc: Invoke, connected: int, fake_api: FakeStorageApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _image(tmp_path, 300_000)
    requested: list[int] = []
    original_read = multipart.MultipartFileBody.read

    def spy(self: multipart.MultipartFileBody, size: int | None = -1) -> bytes:
        requested.append(-1 if size is None else size)
        return original_read(self, size)

    monkeypatch.setattr(multipart.MultipartFileBody, "read", spy)
    result = pvc("storage", "volume", "upload", "vms", "vm1_disk0", str(image), "-f", "qcow2")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Wrote uploaded file to volume vm1_disk0 in pool vms"
    [upload] = fake_api.uploads
    assert upload["data"] == image.read_bytes()
    assert upload["filename"] == "disk image.qcow2"
    assert upload["args"] == {"image_format": ["qcow2"], "file_size": ["300000"]}
    assert upload["form"] == {}
    assert upload["content_type"].startswith("multipart/form-data; boundary=")
    assert int(upload["content_length"]) > 300_000 and upload["transfer_encoding"] is None
    # The body was read in blocks, never as a whole.
    assert requested and all(0 < size < 300_000 for size in requested)
    default = pvc("-q", "storage", "volume", "upload", "vms", "vm2_disk0", str(image))
    assert default.exit_code == 0 and default.stderr == ""
    assert fake_api.uploads[1]["args"]["image_format"] == ["raw"]


def test_upload_errors(pvc: Invoke, connected: int, fake_api: FakeStorageApi, tmp_path: Path) -> None:
    image = _image(tmp_path, 1000)
    unknown = pvc("storage", "volume", "upload", "vms", "ghost", str(image))
    assert unknown.exit_code == 1
    assert unknown.stderr.splitlines()[-1] == 'Error: Volume "ghost" not found in pool "vms"'
    bad_format = pvc("storage", "volume", "upload", "vms", "vm1_disk0", str(image), "-f", "iso")
    assert bad_format.exit_code == 1
    assert bad_format.stderr.splitlines()[-1] == "Error: image_format: A valid image format must be specified"
    missing = pvc("storage", "volume", "upload", "vms", "vm1_disk0", str(tmp_path / "nothing.img"))
    assert missing.exit_code == 1 and "nothing.img is not a file" in missing.stderr
    assert fake_api.uploads == [] and len(fake_api.calls("POST")) == 2


# Snapshots.


def test_snapshot_add_list_rename(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    added = pvc("storage", "volume", "snapshot", "add", "vms", "vm2_disk0", "nightly")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == 'Created RBD snapshot "nightly" of volume "vm2_disk0" in pool "vms"'
    assert fake_api.calls("POST", "/storage/ceph/snapshot")[0].args == {
        "snapshot": ["nightly"],
        "volume": ["vm2_disk0"],
        "pool": ["vms"],
    }
    pretty = pvc("storage", "volume", "snapshot", "list")
    assert pretty.stdout.splitlines()[0].split() == ["Name", "Volume", "Pool", "Size", "Protected", "Created"]
    assert table_rows(pretty.stdout) == [
        ["before-upgrade", "vm1_disk0", "vms", "10G", "No", "2026-11-22", "12:00:00"],
        ["nightly", "vm2_disk0", "vms", "20G", "No", "2026-11-22", "12:00:00"],
    ]
    raw = pvc("storage", "volume", "snapshot", "list", "night", "-p", "vms", "-o", "vm2_disk0", "-f", "raw")
    assert raw.stdout == "nightly\n"
    assert fake_api.calls("GET", "/storage/ceph/snapshot")[-1].args == {
        "limit": ["night"],
        "pool": ["vms"],
        "volume": ["vm2_disk0"],
    }
    data = json.loads(
        pvc("storage", "volume", "snapshot", "list", "--volume", "vm1_disk0", "-f", "json").stdout
    )
    assert [s["snapshot"] for s in data] == ["before-upgrade"]
    renamed = pvc("storage", "volume", "snapshot", "rename", "vms", "vm2_disk0", "nightly", "weekly")
    assert renamed.exit_code == 0
    assert fake_api.calls("PUT", "/storage/ceph/snapshot/vms/vm2_disk0/nightly")[0].args == {
        "new_name": ["weekly"]
    }
    assert ("vms", "vm2_disk0", "weekly") in fake_api.snapshots
    dup = pvc("storage", "volume", "snapshot", "add", "vms", "vm2_disk0", "weekly")
    assert dup.exit_code == 1
    assert dup.stderr.splitlines()[-1] == 'Error: Snapshot "weekly" already exists for volume "vm2_disk0"'
    fake_api.snapshots.clear()
    assert pvc("storage", "volume", "snapshot", "list").stdout.strip() == "No snapshots."


def test_snapshot_remove_and_rollback(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    args = ["vms", "vm1_disk0", "before-upgrade"]
    path = "/storage/ceph/snapshot/vms/vm1_disk0/before-upgrade"
    refused = pvc("storage", "volume", "snapshot", "rollback", *args)
    assert refused.exit_code == 0
    assert "Roll volume vms/vm1_disk0 back to snapshot before-upgrade" in refused.stderr
    refused = pvc("storage", "volume", "snapshot", "remove", *args, input="n\n")
    assert "Remove snapshot before-upgrade of volume vms/vm1_disk0? [y/N]" in refused.stderr
    assert writes(fake_api) == []
    rolled = pvc("storage", "volume", "snapshot", "rollback", *args, "-y")
    assert rolled.exit_code == 0, rolled.output
    assert (
        rolled.stdout.strip()
        == 'Rolled back RBD volume "vm1_disk0" in pool "vms" to snapshot "before-upgrade"'
    )
    assert fake_api.calls("POST", f"{path}/rollback")[0].args == {}
    removed = pvc("storage", "volume", "snapshot", "remove", *args, input="y\n")
    assert removed.exit_code == 0
    assert removed.stdout.strip().endswith(
        'Removed RBD snapshot "before-upgrade" of volume "vm1_disk0" in pool "vms"'
    )
    assert len(fake_api.calls("DELETE", path)) == 1 and fake_api.snapshots == {}
    gone = pvc("-u", "storage", "volume", "snapshot", "rollback", *args)
    assert gone.exit_code == 1
    assert "not found" in gone.stderr.splitlines()[-1]


# Benchmarks.


def test_benchmark_run(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    refused = pvc("storage", "benchmark", "run", "vms")
    assert refused.exit_code == 0 and "Run a storage benchmark in pool vms" in refused.stderr
    assert writes(fake_api) == []
    done = pvc("storage", "benchmark", "run", "vms", "-y")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "SUCCESS: Benchmark 20261122-140000-vms finished"
    assert fake_api.calls("POST", "/storage/ceph/benchmark")[0].args == {"pool": ["vms"]}
    queued = pvc("storage", "benchmark", "run", "ssdpool", "--name", "mine", "--no-wait", "-y")
    assert queued.stdout.strip() == "Task ID: beef0002 assigned to node hv1"
    assert fake_api.calls("POST", "/storage/ceph/benchmark")[1].args == {
        "pool": ["ssdpool"],
        "name": ["mine"],
    }
    fake_api.task_steps = [{"state": "FAILURE", "current": 0, "total": 1, "status": "Pool is full"}]
    failed = pvc("-u", "storage", "benchmark", "run", "vms")
    assert failed.exit_code == 1 and failed.stdout.strip() == "FAILURE: Pool is full"
    nopool = pvc("storage", "benchmark", "run", "nope", "-y")
    assert nopool.exit_code == 1 and nopool.stderr.splitlines()[-1] == "Error: Pool nope not found"


def test_benchmark_list_and_info(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    listed = pvc("storage", "benchmark", "list")
    assert listed.exit_code == 0, listed.output
    header = listed.stdout.splitlines()[0]
    for title in ("Job", "Pool", "rand_write_4K IOPS", "rand_write_4K MiB/s", "seq_write_4M IOPS"):
        assert title in header, title
    rows = table_rows(listed.stdout)
    assert rows[0] == ["20261122-120000-vms", "Finished", "vms", "12.5s", "1234.5", "4.82", "28", "112"]
    assert rows[1][:2] == ["20261122-130000-ssdpool", "Running"]
    data = json.loads(pvc("storage", "benchmark", "list", "-f", "json").stdout)
    assert data == fake_api.benchmarks
    one = json.loads(pvc("storage", "benchmark", "list", "20261122-130000-ssdpool", "-f", "json").stdout)
    assert [job["job"] for job in one] == ["20261122-130000-ssdpool"]
    assert fake_api.calls("GET", "/storage/ceph/benchmark")[-1].args == {"job": ["20261122-130000-ssdpool"]}
    info = pvc("storage", "benchmark", "info", "20261122-120000-vms")
    assert info.exit_code == 0, info.output
    assert "Job:         20261122-120000-vms" in info.stdout and "Elapsed:     12.5s" in info.stdout
    lines = {line.split()[0]: line.split() for line in info.stdout.splitlines() if line.strip()}
    assert lines["rand_write_4K"] == ["rand_write_4K", "1234.5", "4.82", "5", "1272.7", "4.97", "5", "0.97"]
    assert lines["seq_write_4M"][-1] == "0.8"
    running = pvc("storage", "benchmark", "info", "20261122-130000-ssdpool")
    assert "Status:      Running" in running.stdout and "IOPS" not in running.stdout
    as_json = json.loads(
        pvc("storage", "benchmark", "info", "20261122-120000-vms", "-f", "json-pretty").stdout
    )
    assert as_json == fake_api.benchmarks[0]
    unknown = pvc("storage", "benchmark", "info", "nope")
    assert unknown.exit_code == 1 and unknown.stderr.splitlines()[-1] == "Error: Benchmark job nope not found"
    fake_api.benchmarks.clear()
    assert pvc("storage", "benchmark", "list").stdout.strip() == "No benchmark jobs."


# Errors and formatting helpers.


def test_validation_errors_and_unreachable_api(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    fake_api.api_key = "another-key"
    denied = pvc("storage", "pool", "list")
    assert denied.exit_code == 1 and denied.stderr.splitlines()[-1] == "Error: Authentication required"
    fake_api.api_key = None
    fake_api.fail_with = [503, 503, 503]
    flaky = pvc("storage", "volume", "list")
    assert flaky.exit_code == 1 and flaky.stderr.splitlines()[-1] == "Error: Temporary failure"


def test_human_figures() -> None:
    assert [human_bytes(v) for v in (512, 4096, 1288490188, 10737418240, None, "7G")] == [
        "512B",
        "4.0K",
        "1.2G",
        "10.0G",
        "N/A",
        "7G",
    ]
    assert [number(v) for v in (1234.5, 0.97, 12, 5.0, 2.456, None)] == [
        "1234.5",
        "0.97",
        "12",
        "5",
        "2.46",
        "N/A",
    ]
