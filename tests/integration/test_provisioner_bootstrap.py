"""Debian installs for the ``debootstrap`` script, with the real tools as ``pvcprov``: the
steps run unprivileged and die when their time is up or the task is cancelled; a tarball
becomes an ext4 image of the disk's size; a mirror that cannot be reached fails the install
with the installer's own words. (No test reaches a real mirror: the machines running tests
have no network beyond loopback.)"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner import bootstrap
from pvc.cluster.provisioner.sandbox import ScriptError, run_hook
from pvc.cluster.provisioner.scripts import shipped
from tests.helpers import reachable_dir

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runs the installer's steps as pvcprov (needs root)"),
    pytest.mark.skipif(
        shutil.which("mmdebstrap") is None, reason="mmdebstrap is not installed (make install)"
    ),
]

CLOSED_MIRROR = "http://127.0.0.1:9/debian"
VM = {
    "name": "deb1",
    "profile": "debian",
    "arguments": {"kernel": "/images/vmlinuz", "initrd": "/images/initrd.img", "packages": "cloud-init"},
    "volumes": [
        {
            "disk_id": "sda",
            "pool": "vms",
            "volume": "deb1_sda",
            "source_volume": "base@golden",
            "size_gb": 4,
            "mountpoint": None,
        },
        {
            "disk_id": "sdb",
            "pool": "vms",
            "volume": "deb1_sdb",
            "source_volume": None,
            "size_gb": 1,
            "mountpoint": None,
        },
    ],
}


@pytest.fixture
def parent():
    """A directory pvcprov can reach (pytest's own temporary directories are closed to it)."""
    with reachable_dir() as path:
        yield path


def install_of(**settings) -> bootstrap.Install:
    install = bootstrap.directive({"debootstrap": settings}, VM, [CLOSED_MIRROR])
    assert install is not None
    return install


def test_the_shipped_script_describes_the_install_that_pvc_then_accepts():
    script = shipped("debootstrap")
    with pytest.raises(ScriptError, match="needs the argument kernel"):
        run_hook("debootstrap", script, "setup", {**VM, "arguments": {}})
    assert "installing Debian bookworm into disk sdb" in run_hook("debootstrap", script, "setup", VM).log[0]
    assert run_hook("debootstrap", script, "create", VM).value == {
        "kernel": "/images/vmlinuz",
        "initrd": "/images/initrd.img",
        "cmdline": "root=/dev/vdb rw console=ttyS0",
    }
    answer = run_hook("debootstrap", script, "install", VM).value
    install = bootstrap.directive(answer, VM, [CLOSED_MIRROR])
    assert install is not None
    assert (install.disk_id, install.mirror, install.packages) == ("sdb", CLOSED_MIRROR, ("cloud-init",))


def test_steps_run_as_pvcprov_and_a_failure_quotes_their_output(parent):
    with bootstrap.work_directory(parent) as work:
        assert work.stat().st_uid == pwd.getpwnam("pvcprov").pw_uid
        runner = bootstrap.Runner(work, lambda: False)
        with pytest.raises(
            ClusterError, match=r"probing failed \(exit status 3\): uid (\d+) \| in (\S+)"
        ) as error:
            runner.run(["sh", "-c", 'echo uid $(id -u); echo in "$HOME"; exit 3'], 10, "probing")
        assert f"uid {pwd.getpwnam('pvcprov').pw_uid} " in str(error.value)
        assert f"in {work}" in str(error.value)
    assert not work.exists()


@pytest.mark.parametrize("why", ["timeout", "cancel"])
def test_a_step_is_killed_with_what_it_started_when_time_is_up_or_the_task_is_cancelled(parent, why):
    cancel = threading.Event()
    with bootstrap.work_directory(parent) as work:
        runner = bootstrap.Runner(work, cancel.is_set)
        if why == "cancel":
            threading.Timer(0.5, cancel.set).start()
        began = time.monotonic()
        with pytest.raises(
            ClusterError, match="was cancelled" if why == "cancel" else "did not finish within 1 s"
        ):
            runner.run(
                ["sh", "-c", "sleep 60 & echo $! > child; wait"], 1.0 if why == "timeout" else 30, "waiting"
            )
        assert time.monotonic() - began < 10
        child = int((work / "child").read_text())
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()


def _tarball(path: Path) -> None:
    """A small root tree as mmdebstrap writes one: root-owned, with a group-owned secret."""
    with tarfile.open(path, "w") as archive:
        for name, data, mode, gid in [
            ("etc/hostname", b"deb1\n", 0o644, 0),
            ("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o640, 42),
            ("usr/bin/tool", b"#!/bin/sh\n" + bytes(300_000), 0o755, 0),
        ]:
            for directory in Path(name).parents[::-1][1:]:
                info = tarfile.TarInfo(str(directory))
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                if str(directory) not in archive.getnames():
                    archive.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.gid = len(data), mode, gid
            archive.addfile(info, io.BytesIO(data))


def _debugfs(image: Path, request: str) -> str:
    return subprocess.run(
        ["debugfs", "-R", request, str(image)], capture_output=True, text=True, check=True
    ).stdout


def test_a_tarball_becomes_an_ext4_image_of_the_disks_size_keeping_owners(parent):
    install = install_of()
    with bootstrap.work_directory(parent) as work:
        tarball = work / "root.tar"
        _tarball(tarball)
        os.chown(tarball, pwd.getpwnam("pvcprov").pw_uid, -1)
        image = bootstrap.make_filesystem(install, bootstrap.Runner(work, lambda: False), tarball)
        assert image.stat().st_size == install.size == 1024**3
        assert not tarball.exists()
        header = subprocess.run(
            ["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True
        ).stdout
        assert "Filesystem volume name:   pvc-root" in header
        features = header.split("Filesystem features:")[1].split("\n")[0].split()
        assert {"has_journal", "extent", "dir_index"} <= set(features)
        assert "Block size:               4096" in header
        assert int(header.split("Block count:")[1].split()[0]) * 4096 == install.size
        assert _debugfs(image, "cat /etc/hostname") == "deb1\n"
        shadow = _debugfs(image, "stat /etc/shadow")
        assert "User:     0   Group:    42" in shadow and "Mode:  0640" in shadow


def test_a_system_larger_than_the_disk_is_refused_before_any_filesystem(parent):
    install = install_of()
    with bootstrap.work_directory(parent) as work:
        tarball = work / "root.tar"
        with open(tarball, "wb") as file:
            file.truncate(900 * 1024**2)
        with pytest.raises(ClusterError, match="more than disk sdb has"):
            bootstrap.make_filesystem(install, bootstrap.Runner(work, lambda: False), tarball)
        assert not (work / "root.img").exists()


def test_an_unreachable_mirror_fails_the_install_in_the_installers_words(parent):
    install = install_of()
    with bootstrap.work_directory(parent) as work:
        runner = bootstrap.Runner(work, lambda: False)
        with pytest.raises(
            ClusterError, match=f"installing Debian bookworm from {CLOSED_MIRROR} failed"
        ) as error:
            bootstrap.fetch(install, runner, 120)
        assert "Failed to fetch http://127.0.0.1:9/debian/dists/bookworm" in str(error.value)
        assert "Connection refused" in str(error.value)
    assert not list(parent.iterdir())


def test_a_work_directory_pvcprov_cannot_reach_is_refused(parent):
    closed = parent / "closed"
    closed.mkdir(mode=0o700)
    with (
        pytest.raises(ClusterError, match="cannot reach the work directory"),
        bootstrap.work_directory(closed),
    ):
        pass
