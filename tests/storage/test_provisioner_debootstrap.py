"""The ``debootstrap`` script through ``POST /provisioner/create`` over real Ceph, PostgreSQL
and ZooKeeper: the installer really runs, as ``pvcprov``, and stops where it needs the
network (the allowed mirror is a closed loopback port); the task fails at stage install in
the installer's words and leaves nothing behind. A mirror the cluster does not allow is
refused the same way. The filesystem image such an install makes lands intact in RBD."""

from __future__ import annotations

import os
import pwd
import shutil
import tarfile

import pytest

from pvc.cluster.provisioner import bootstrap
from pvc.cluster.provisioner.scripts import shipped
from pvc.config.provisioner import ProvisionerSection
from pvc.storage import upload, volumes
from pvc.storage.images import open_image
from tests.helpers import reachable_dir
from tests.storage.conftest import POOL
from tests.storage.provisioner_harness import call, create, ok

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="install scripts run as pvcprov (needs root)"),
    pytest.mark.skipif(
        shutil.which("mmdebstrap") is None, reason="mmdebstrap is not installed (make install)"
    ),
]

CLOSED_MIRROR = "http://127.0.0.1:9/debian"


@pytest.fixture
def work_dir():
    """A work directory pvcprov can reach (pytest's temporary directories are closed to it)."""
    with reachable_dir() as path:
        yield path


@pytest.fixture
def debian_api(prov_api, work_dir):
    client, context = prov_api
    context.provisioner = ProvisionerSection(
        domain_type="qemu", hook_timeout=60, debootstrap_mirrors=[CLOSED_MIRROR], work_dir=str(work_dir)
    )
    ok(
        client,
        "POST",
        "/provisioner/template/system",
        name="deb",
        vcpus=1,
        vram=64,
        serial="true",
        vnc="false",
    )
    ok(client, "POST", "/provisioner/template/storage", name="deb")
    ok(client, "POST", "/provisioner/template/storage/deb/disk", disk_id="sda", pool=POOL, disk_size=1)
    ok(client, "POST", "/provisioner/script", name="debootstrap", data=shipped("debootstrap"))
    return client


def profile(client, name: str, *args: str) -> None:
    ok(
        client,
        "POST",
        "/provisioner/profile",
        name=name,
        system_template="deb",
        storage_template="deb",
        script="debootstrap",
        arg=["kernel=/images/vmlinuz", *args],
    )


def _outcome(task: dict) -> str:
    result = task["result"]
    return (result["message"] if isinstance(result, dict) else str(result)) + task.get("status", "")


def test_the_install_runs_and_stops_at_the_mirror_leaving_nothing(debian_api, ceph_client, work_dir):
    profile(debian_api, "debian", "packages=openssh-server")
    task = create(debian_api, "deb1", "debian")
    assert task["state"] == "FAILURE"
    message = _outcome(task)
    assert "failed at stage install" in message
    assert f"installing Debian bookworm from {CLOSED_MIRROR} failed" in message
    assert "Connection refused" in message
    assert "everything it made was removed" in message
    assert not volumes.exists(ceph_client, POOL, "deb1_sda")
    assert call(debian_api, "GET", "/vm/deb1")[0] == 404
    assert list(work_dir.iterdir()) == []


def test_a_mirror_the_cluster_does_not_allow_is_refused(debian_api, ceph_client, work_dir):
    profile(debian_api, "elsewhere", "mirror=http://10.0.0.1/debian")
    task = create(debian_api, "deb2", "elsewhere")
    assert task["state"] == "FAILURE"
    message = _outcome(task)
    assert "failed at stage install" in message and "not one the cluster allows" in message
    assert not volumes.exists(ceph_client, POOL, "deb2_sda")
    assert list(work_dir.iterdir()) == []


def test_an_installed_filesystem_lands_intact_in_its_volume(ceph_client, unique, work_dir):
    name = unique("deb")
    data = {"name": name, "volumes": [{"disk_id": "sda", "pool": POOL, "volume": name, "size_gb": 1}]}
    install = bootstrap.directive({"debootstrap": {}}, data, [CLOSED_MIRROR])
    assert install is not None
    volumes.create(ceph_client, POOL, name, install.size)
    try:
        with bootstrap.work_directory(work_dir) as work:
            tarball = work / "root.tar"
            with tarfile.open(tarball, "w") as archive:
                info = tarfile.TarInfo("etc")
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            os.chown(tarball, pwd.getpwnam("pvcprov").pw_uid, -1)
            image = bootstrap.make_filesystem(install, bootstrap.Runner(work, lambda: False), tarball)
            upload.import_image(ceph_client, POOL, name, image, "raw")
            expected = image.read_bytes()[:8192]
        with open_image(ceph_client, POOL, name, read_only=True) as rbd_image:
            written = rbd_image.read(0, 8192)
        assert written == expected
        assert written[1024 + 56 : 1024 + 58] == b"\x53\xef"  # the ext superblock's magic
        assert written[1024 + 120 : 1024 + 128] == bootstrap.ROOT_LABEL.encode()
    finally:
        volumes.remove(ceph_client, POOL, name)
