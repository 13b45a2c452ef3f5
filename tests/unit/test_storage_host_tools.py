"""Storage adapters for host tools: block device checks, tool errors, LVM and ceph-volume."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pvc import commands
from pvc.commands import CommandError
from pvc.storage import ceph_volume, devices, lvm, osds, tools
from pvc.storage.errors import (
    StorageDeviceError,
    StorageTimeout,
    StorageToolError,
    StorageToolTimeout,
    tool_error,
)


def test_a_file_is_no_block_device(tmp_path: Path) -> None:
    plain = tmp_path / "disk"
    plain.write_bytes(b"x" * 4096)
    with pytest.raises(StorageDeviceError, match=f"^{plain} is not a block device$"):
        devices.require_block_device(str(plain))
    with pytest.raises(StorageDeviceError, match=f"^device {tmp_path}/gone: No such file or directory$"):
        devices.require_block_device(str(tmp_path / "gone"))
    assert devices.size_bytes(str(plain)) == 4096
    with pytest.raises(StorageDeviceError, match=f"^device {tmp_path}/gone: No such file or directory$"):
        devices.size_bytes(str(tmp_path / "gone"))


def test_a_block_device_passes() -> None:
    found = [entry.path for entry in os.scandir("/dev") if stat.S_ISBLK(os.lstat(entry.path).st_mode)]
    if not found:
        pytest.skip("no block device in /dev here")
    devices.require_block_device(found[0])


def test_tool_failures_keep_the_runner_message() -> None:
    with pytest.raises(StorageToolError, match=r"^sh failed: no room$") as caught:
        tools.run(["sh", "-c", "echo no room >&2; exit 5"])
    assert not isinstance(caught.value, StorageTimeout)
    assert tools.run(["echo", "fine"]) == "fine\n"
    with pytest.raises(StorageToolTimeout, match=r"^sleep 5 did not finish within 0 s$") as late:
        tools.run(["sleep", "5"], timeout=0.2)
    assert isinstance(late.value, StorageTimeout) and isinstance(late.value, StorageToolError)
    with pytest.raises(StorageToolError, match=r"^cannot run pvc-no-such-tool: "):
        tools.run(["pvc-no-such-tool"])


def _error(argv: list[str], **kwargs) -> CommandError:
    with pytest.raises(CommandError) as caught:
        commands.run(argv, **kwargs)
    return caught.value


def test_tool_error_picks_the_message_for_what_happened() -> None:
    failed = _error(["false"], timeout=10)
    timed_out = _error(["sleep", "5"], timeout=0.2)
    missing = _error(["pvc-no-such-tool"], timeout=10)
    given = {"failed": "F", "timed_out": "T", "cannot_run": "C"}
    assert [str(tool_error(error, **given)) for error in (failed, timed_out, missing)] == ["F", "T", "C"]
    assert [type(tool_error(error)) for error in (failed, timed_out, missing)] == [
        StorageToolError,
        StorageToolTimeout,
        StorageToolError,
    ]
    assert str(tool_error(missing, failed="F")) == str(missing)


@pytest.fixture
def ran(monkeypatch) -> list[list[str]]:
    """The command lines the adapters run, recorded instead of run."""
    lines: list[list[str]] = []
    monkeypatch.setattr(tools, "run", lambda argv, timeout=tools.TIMEOUT: lines.append(list(argv)) or "")
    return lines


def test_lvm_command_lines(ran: list[list[str]]) -> None:
    lvm.create_physical_volume("/dev/sdx")
    lvm.create_db_volume_group("/dev/sdx")
    volume = lvm.create_db_volume(300 * 1024**2)
    lvm.remove_volume(volume)
    vg, lv = volume.split("/")
    assert vg == lvm.DB_VG_NAME == "osd-db" and lv.startswith("osd-db-") and len(lv) == len("osd-db-") + 12
    assert ran == [
        ["pvcreate", "--yes", "/dev/sdx"],
        ["vgcreate", "osd-db", "/dev/sdx"],
        ["lvcreate", "--yes", "-L", f"{300 * 1024**2}b", "-n", lv, "osd-db"],
        ["lvremove", "--yes", volume],
    ]


def test_ceph_volume_command_lines(ran: list[list[str]]) -> None:
    ceph_volume.create("/dev/sdx")
    ceph_volume.create("/dev/sdx", osd_id=4, block_db="osd-db/osd-db-1")
    ceph_volume.batch("/dev/sdx", 3)
    ceph_volume.activate_all()
    create = ["ceph-volume", "lvm", "create", "--bluestore", "--data", "/dev/sdx"]
    assert ran == [
        create,
        [*create, "--osd-id", "4", "--block.db", "osd-db/osd-db-1"],
        ["ceph-volume", "lvm", "batch", "--yes", "--bluestore", "--osds-per-device", "3", "/dev/sdx"],
        ["ceph-volume", "lvm", "activate", "--all"],
    ]


@pytest.fixture
def block_device(monkeypatch) -> list[int]:
    """Any device counts as a block device; the OSD ids Ceph knows are the returned list."""
    known = [0]
    monkeypatch.setattr(devices, "require_block_device", lambda device: None)
    monkeypatch.setattr(osds, "ids", lambda client: list(known))
    return known


def test_a_db_volume_is_removed_when_the_osd_cannot_be_created(monkeypatch, block_device) -> None:
    lines: list[list[str]] = []

    def run(argv, timeout=tools.TIMEOUT):
        lines.append(list(argv))
        if argv[0] == "ceph-volume":
            raise StorageToolError("ceph-volume lvm create failed: no udev")
        return ""

    monkeypatch.setattr(tools, "run", run)
    with pytest.raises(StorageToolError, match=r"^ceph-volume lvm create failed: no udev$"):
        ceph_volume.create_osds(None, "/dev/sdx", db_size=300 * 1024**2)
    assert [line[0] for line in lines] == ["lvcreate", "ceph-volume", "lvremove"]
    assert lines[2][-1] == lines[1][-1]  # the volume given as --block.db


def test_new_osds_are_those_ceph_did_not_know_before(monkeypatch, block_device) -> None:
    monkeypatch.setattr(tools, "run", lambda argv, timeout=tools.TIMEOUT: block_device.extend([3, 1]) or "")
    assert ceph_volume.create_osds(None, "/dev/sdx", count=2) == [(1, ""), (3, "")]
    assert ceph_volume.create_osds(None, "/dev/sdy", osd_id=7) == [(7, "")]
    monkeypatch.setattr(tools, "run", lambda argv, timeout=tools.TIMEOUT: "")
    with pytest.raises(
        StorageToolError, match=r"^ceph-volume finished but no new OSD appeared for /dev/sdz$"
    ):
        ceph_volume.create_osds(None, "/dev/sdz")
