"""``pvc storage osd`` and ``create-db-vg``: listing, add/remove/replace as tasks, flags."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Invoke
from tests.cli.fakeapi_storage import FakeStorageApi
from tests.cli.storage_fixtures import YES, api_port_fixture, fake_api_fixture, table_rows, writes  # noqa: F401

# OSDs.


def test_osd_list_formats(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    pretty = pvc("storage", "osd", "list")
    assert pretty.exit_code == 0, pretty.output
    header = pretty.stdout.splitlines()[0].split()
    assert header[:8] == ["ID", "Node", "Up", "In", "Weight", "Reweight", "PGs", "Size"]
    rows = table_rows(pretty.stdout)
    assert rows[0] == [
        "0",
        "hv1",
        "up",
        "in",
        "1",
        "1",
        "33",
        "10.0G",
        "1.2G",
        "8.8G",
        "12.3%",
        "1",
        "45",
        "512B/s",
        "120",
        "3.0M/s",
        "/dev/sdb",
        "N/A",
    ]
    assert rows[2][:4] == ["2", "hv2", "down", "out"]
    assert rows[2][12:16] == ["N/A"] * 4  # a down OSD's I/O rates are not known
    assert pvc("storage", "osd", "list", "-f", "raw").stdout == "0\n1\n2\n"
    data = json.loads(pvc("storage", "osd", "list", "-f", "json").stdout)
    assert data[1]["device"] == "/dev/sdb" and data[1]["stats"]["node"] == "hv2"
    assert pvc("storage", "osd", "list", "-f", "json-pretty").stdout.startswith("[\n  {\n")
    limited = pvc("storage", "osd", "list", "^1$", "-f", "raw")
    assert limited.stdout == "1\n"
    assert fake_api.calls("GET", "/storage/ceph/osd")[-1].args == {"limit": ["^1$"]}
    assert fake_api.calls("GET", "/storage/ceph/osd")[0].args == {}
    fake_api.osds.clear()
    assert pvc("storage", "osd", "list").stdout.strip() == "No OSDs."


def test_osd_add_confirms_sends_and_waits(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    refused = pvc("storage", "osd", "add", "hv1", "/dev/sdd")
    assert refused.exit_code == 0
    assert "Destroy all data on hv1:/dev/sdd and create a new OSD on it? [y/N]" in refused.stderr
    assert refused.stdout.strip() == "Aborted."
    assert writes(fake_api) == []
    done = pvc("storage", "osd", "add", "hv1", "/dev/sdd", "-y")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "SUCCESS: Created new OSD 3 on hv1:/dev/sdd"
    assert fake_api.calls("POST", "/storage/ceph/osd")[0].args == {
        "node": ["hv1"],
        "device": ["/dev/sdd"],
        "weight": ["1.0"],
    }
    assert fake_api.calls("GET", "/tasks/beef0001")
    assert fake_api.osds["3"]["device"] == "/dev/sdd"
    options = pvc(
        "storage", "osd", "add", "hv2", "/dev/nvme0n1", "-w", "0.5", "-r", "0.05", "-s", "20G", "-c", "2",
        "--no-wait", "--yes",
    )  # fmt: skip
    assert options.exit_code == 0, options.output
    assert options.stdout.strip() == "Task ID: beef0002 assigned to node hv2"
    assert fake_api.calls("GET", "/tasks/beef0002") == []
    assert fake_api.calls("POST", "/storage/ceph/osd")[1].args == {
        "node": ["hv2"],
        "device": ["/dev/nvme0n1"],
        "weight": ["0.5"],
        "ext_db_ratio": ["0.05"],
        "ext_db_size": ["20G"],
        "osd_count": ["2"],
    }
    prompted = pvc("storage", "osd", "add", "hv1", "/dev/sde", input="y\n")
    assert prompted.exit_code == 0 and prompted.stdout.strip().endswith(
        "SUCCESS: Created new OSD 5 on hv1:/dev/sde"
    )
    assert pvc("storage", "osd", "add", "hv1", "/dev/sdf", "-w", "heavy", "-y").exit_code == 2


def test_osd_task_progress_and_failure(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    fake_api.task_steps = [
        {"state": "PENDING", "current": 0, "total": 3, "status": "Pending job start"},
        {"state": "RUNNING", "current": 1, "total": 3, "status": "Zapping /dev/sdd"},
        {"state": "RUNNING", "current": 2, "total": 3, "status": "Creating OSD"},
        {"state": "SUCCESS", "current": 3, "total": 3, "status": "Created new OSD 3"},
    ]
    done = pvc("storage", "osd", "add", "hv1", "/dev/sdd", "-y")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "SUCCESS: Created new OSD 3"
    assert "3/3" in done.stderr
    assert len(fake_api.calls("GET", "/tasks/beef0001")) == 4
    fake_api.task_steps = [
        {"state": "RUNNING", "current": 1, "total": 2, "status": "Zapping /dev/sdb"},
        {"state": "FAILURE", "current": 1, "total": 2, "status": "Device /dev/sdb is in use"},
    ]
    failed = pvc("storage", "osd", "remove", "0", "-y")
    assert failed.exit_code == 1
    assert failed.stdout.strip() == "FAILURE: Device /dev/sdb is in use"
    refreshed = pvc("storage", "osd", "refresh", "1", "/dev/sdb", "-y")
    assert refreshed.exit_code == 1 and refreshed.stdout.strip() == "FAILURE: Device /dev/sdb is in use"


def test_osd_remove(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    refused = pvc("storage", "osd", "remove", "2")
    assert refused.exit_code == 0 and "Remove OSD 2 and destroy all its data? [y/N]" in refused.stderr
    assert writes(fake_api) == [] and "2" in fake_api.osds
    done = pvc("storage", "osd", "remove", "2", "-y")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "SUCCESS: Removed OSD 2"
    assert fake_api.calls("DELETE", "/storage/ceph/osd/2")[0].args == {"force": ["false"], **YES}
    assert "2" not in fake_api.osds
    forced = pvc("-u", "storage", "osd", "remove", "1", "--force", "--no-wait")
    assert forced.stdout.strip() == "Task ID: beef0002 assigned to node hv2"
    assert fake_api.calls("DELETE", "/storage/ceph/osd/1")[0].args == {"force": ["true"], **YES}
    gone = pvc("storage", "osd", "remove", "2", "-y")
    assert gone.exit_code == 1 and gone.stderr.splitlines()[-1] == "Error: OSD 2 not found"
    assert gone.stdout == ""


def test_osd_replace_and_refresh(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    refused = pvc("storage", "osd", "replace", "1", "/dev/sdx")
    assert refused.exit_code == 0 and "Replace OSD 1 with a new OSD on /dev/sdx" in refused.stderr
    assert writes(fake_api) == []
    done = pvc("storage", "osd", "replace", "1", "/dev/sdx", "-y")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "SUCCESS: Replaced OSD 1 with /dev/sdx"
    assert fake_api.calls("POST", "/storage/ceph/osd/1")[0].args == {"new_device": ["/dev/sdx"], **YES}
    pvc(
        "storage",
        "osd",
        "replace",
        "1",
        "/dev/sdy",
        "-o",
        "/dev/sdx",
        "-w",
        "2",
        "-r",
        "0.1",
        "-s",
        "5G",
        "-y",
    )
    assert fake_api.calls("POST", "/storage/ceph/osd/1")[1].args == {
        "new_device": ["/dev/sdy"],
        **YES,
        "old_device": ["/dev/sdx"],
        "weight": ["2"],
        "ext_db_ratio": ["0.1"],
        "ext_db_size": ["5G"],
    }
    refused = pvc("storage", "osd", "refresh", "0", "/dev/sdb")
    assert refused.exit_code == 0 and "Refresh OSD 0 from device /dev/sdb? [y/N]" in refused.stderr
    assert fake_api.calls("PUT") == []
    refreshed = pvc("storage", "osd", "refresh", "0", "/dev/sdb", "-y")
    assert refreshed.stdout.strip() == "SUCCESS: Refreshed OSD 0 on /dev/sdb"
    assert fake_api.calls("PUT", "/storage/ceph/osd/0")[0].args == {"device": ["/dev/sdb"]}


@pytest.mark.parametrize("where", [["storage"], ["storage", "osd"]])
def test_create_db_vg(pvc: Invoke, connected: int, fake_api: FakeStorageApi, where: list[str]) -> None:
    refused = pvc(*where, "create-db-vg", "hv1", "/dev/nvme0n1")
    assert refused.exit_code == 0 and "Destroy all data on hv1:/dev/nvme0n1" in refused.stderr
    assert writes(fake_api) == []
    done = pvc(*where, "create-db-vg", "hv1", "/dev/nvme0n1", "-y")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "SUCCESS: Created OSD database volume group on hv1:/dev/nvme0n1"
    assert fake_api.calls("POST", "/storage/ceph/osddb")[0].args == {
        "node": ["hv1"],
        "device": ["/dev/nvme0n1"],
    }
    queued = pvc(*where, "create-db-vg", "hv2", "/dev/sdz", "-y", "--no-wait")
    assert queued.stdout.strip() == "Task ID: beef0002 assigned to node hv2"
    unknown = pvc(*where, "create-db-vg", "hv9", "/dev/sdz", "-y")
    assert unknown.exit_code == 1 and unknown.stderr.splitlines()[-1] == "Error: Node hv9 not found"


def test_osd_in_out_set_unset(pvc: Invoke, connected: int, fake_api: FakeStorageApi) -> None:
    result = pvc("storage", "osd", "out", "0")
    assert (result.exit_code, result.stdout) == (0, "Set OSD 0 out\n")
    assert fake_api.osds["0"]["stats"]["in"] == 0
    assert pvc("storage", "osd", "in", "2").stdout == "Set OSD 2 in\n"
    assert [c.args for c in fake_api.calls("POST")] == [{"state": ["out"]}, {"state": ["in"]}]
    assert [c.path for c in fake_api.calls("POST")] == [
        "/storage/ceph/osd/0/state",
        "/storage/ceph/osd/2/state",
    ]
    missing = pvc("storage", "osd", "in", "7")
    assert missing.exit_code == 1 and missing.stderr.splitlines()[-1] == "Error: OSD 7 not found"
    assert pvc("storage", "osd", "set", "noout").stdout == "Set OSD property noout\n"
    assert fake_api.ceph_flags == {"noout"}
    assert pvc("storage", "osd", "unset", "noout").stdout == "Unset OSD property noout\n"
    assert fake_api.ceph_flags == set()
    options = [c.args for c in fake_api.calls("POST", "/storage/ceph/option")]
    assert options == [
        {"option": ["noout"], "action": ["set"]},
        {"option": ["noout"], "action": ["unset"]},
    ]
