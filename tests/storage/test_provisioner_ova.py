"""OVA import over the session's real Ceph and a real PostgreSQL: an OVA the test builds (an
OVF and a qcow2 disk) becomes a volume, a system template and a profile, and VMs are
created from it; malformed or lying OVAs are refused with nothing left behind."""

from __future__ import annotations

import io
import os

import pytest

from pvc.lab.appliance import QCOW2, ova_bytes, ovf_text
from pvc.lab.appliance import qcow2_disk as qcow2_disk_with
from pvc.storage import volumes
from pvc.storage.images import open_image
from tests.storage.api_harness import PREFIX
from tests.storage.conftest import POOL
from tests.storage.provisioner_harness import call, create, ok

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="install scripts run as pvcprov (needs root)")

MIB = 1024 * 1024
MARKER = b"PVC-OVA-DISK-0123456789"


@pytest.fixture(scope="module")
def qcow2_disk(tmp_path_factory) -> bytes:
    """A 64 MiB disk in qcow2 whose first bytes are MARKER."""
    return qcow2_disk_with(tmp_path_factory.mktemp("ova"), MARKER.decode())


def upload(client, name: str, ova: bytes, *, pool: str = POOL, ova_size: int | None = None):
    reply = client.post(
        f"{PREFIX}/provisioner/ova",
        query_string={"name": name, "pool": pool, "ova_size": ova_size or len(ova)},
        data={"file": (io.BytesIO(ova), f"{name}.ova")},
        content_type="multipart/form-data",
    )
    return reply.status_code, reply.get_json()


def first_bytes(ceph_client, volume: str) -> bytes:
    with open_image(ceph_client, POOL, volume) as image:
        return image.read(0, len(MARKER))


def appliance(disk: bytes, *, declared: int | None = None, href: str = "disk.qcow2") -> bytes:
    return ovf_text(
        [(href, 64 * MIB, QCOW2, len(disk) if declared is None else declared)], cpus=2, memory_mib=128
    )


def test_an_ova_becomes_volumes_a_profile_and_vms(prov_api, ceph_client, qcow2_disk):
    client, _ = prov_api
    ova = ova_bytes(
        [
            ("app.ovf", appliance(qcow2_disk)),
            ("app.mf", b"SHA256(disk.qcow2)= x\n"),
            ("disk.qcow2", qcow2_disk),
        ]
    )
    status, body = upload(client, "app", ova)
    assert status == 200, body
    [record] = ok(client, "GET", "/provisioner/ova/app")
    assert record["volumes"] == [
        {
            "disk_id": "sda",
            "disk_size_gb": "1",
            "pool": POOL,
            "volume_name": "ova_app_sda",
            "volume_format": "raw",
        }
    ]
    assert first_bytes(ceph_client, "ova_app_sda") == MARKER  # converted from qcow2
    assert volumes.info(ceph_client, POOL, "ova_app_sda").size == 64 * MIB
    [system] = ok(client, "GET", "/provisioner/template/system/app")
    assert (system["vcpu_count"], system["vram_mb"]) == (2, 128)
    [profile] = ok(client, "GET", "/provisioner/profile/app")
    assert (profile["profile_type"], profile["ova"], profile["system_template"]) == ("ova", "app", "app")
    assert [o["name"] for o in ok(client, "GET", "/provisioner/ova")] == ["app"]
    # a VM from the OVA's profile gets a copy of its disk
    task = create(client, "fromova", profile_name="app")
    assert task["state"] == "SUCCESS", task
    assert first_bytes(ceph_client, "fromova_sda") == MARKER
    [vm] = ok(client, "GET", "/vm/fromova")
    assert (vm["vcpu"], vm["memory"], vm["profile"]) == (2, 128, "app")
    # the same name again is refused before anything is read
    assert upload(client, "app", ova)[0] == 400
    # removing the OVA removes its volume, profile and template; the VM keeps its copy
    assert "Removed OVA 'app'" in ok(client, "DELETE", "/provisioner/ova/app")["message"]
    assert not volumes.exists(ceph_client, POOL, "ova_app_sda")
    assert volumes.exists(ceph_client, POOL, "fromova_sda")
    assert call(client, "GET", "/provisioner/profile/app")[0] == 404
    assert call(client, "GET", "/provisioner/template/system/app")[0] == 404


def _pax_ova(ovf: bytes, disk: bytes) -> bytes:
    """An OVA whose descriptor carries a 4 MiB extended (pax) header: never read into memory."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("a.ovf")
        info.pax_headers = {"comment": "x" * (4 * MIB)}
        info.size = len(ovf)
        archive.addfile(info, io.BytesIO(ovf))
    return buffer.getvalue()


def _bad_ovas(disk: bytes) -> dict[str, tuple[bytes, str]]:
    good = appliance(disk)
    return {
        "lying size": (
            ova_bytes([("a.ovf", appliance(disk, declared=len(disk) + 1)), ("disk.qcow2", disk)]),
            "declares",
        ),
        "descriptor not first": (ova_bytes([("disk.qcow2", disk), ("a.ovf", good)]), "start with its OVF"),
        "traversal": (ova_bytes([("a.ovf", good), ("../disk.qcow2", disk)]), "not a plain file"),
        "unnamed member": (
            ova_bytes([("a.ovf", good), ("disk.qcow2", disk), ("extra.img", b"x")]),
            "does not name",
        ),
        "missing disk": (ova_bytes([("a.ovf", good)]), "lacks the disk files"),
        "bad descriptor": (ova_bytes([("a.ovf", b"<Envelope/>"), ("disk.qcow2", disk)]), "not an OVF"),
        "not a tar": (b"this is not a tar archive at all. " * 200, "not a whole OVA"),
        "empty": (b"\x00" * 10240, "holds no OVF descriptor"),
        "huge header": (_pax_ova(good, disk), "extended header"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "lying size",
        "descriptor not first",
        "traversal",
        "unnamed member",
        "missing disk",
        "bad descriptor",
        "not a tar",
        "empty",
        "huge header",
    ],
)
def test_malformed_or_lying_ovas_are_refused_leaving_nothing(prov_api, ceph_client, qcow2_disk, case):
    client, _ = prov_api
    ova, why = _bad_ovas(qcow2_disk)[case]
    status, body = upload(client, "bad", ova)
    assert status == 400 and why in body["message"], body
    assert not volumes.exists(ceph_client, POOL, "ova_bad_sda")
    assert call(client, "GET", "/provisioner/ova/bad")[0] == 404
    assert call(client, "GET", "/provisioner/profile/bad")[0] == 404
    assert call(client, "GET", "/provisioner/template/system/bad")[0] == 404


def test_bad_upload_requests(prov_api, qcow2_disk):
    client, _ = prov_api
    ova = ova_bytes([("a.ovf", appliance(qcow2_disk)), ("disk.qcow2", qcow2_disk)])
    status, body = upload(client, "x1", ova, pool="missing")
    assert status == 400 and "Pool 'missing' does not exist" in body["message"]
    assert upload(client, "bad name!", ova)[0] == 400
    assert upload(client, "x2", ova, ova_size=1000)[0] == 413  # larger than declared
    assert call(client, "DELETE", "/provisioner/ova/nope")[0] == 404


def test_the_cli_uploads_lists_and_removes_an_ova(prov_api, ceph_client, qcow2_disk, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from pvc.cli.main import cli
    from tests.api.conftest import TOKENS, served_with_cli, settings

    client, context = prov_api
    context.settings = settings(auth=True)
    client.environ_base["HTTP_X_API_KEY"] = TOKENS["admin"]
    path = tmp_path / "cli.ova"
    path.write_bytes(ova_bytes([("cli.ovf", appliance(qcow2_disk)), ("disk.qcow2", qcow2_disk)]))
    runner = CliRunner()
    with served_with_cli(context, tmp_path, monkeypatch):
        done = runner.invoke(cli, ["-q", "provisioner", "ova", "upload", "cliova", str(path), "-p", POOL])
        assert done.exit_code == 0 and "Imported OVA 'cliova'" in done.output, done.output
        listed = runner.invoke(cli, ["-q", "provisioner", "ova", "list", "-f", "json"])
        assert [o["name"] for o in json.loads(listed.output)] == ["cliova"], listed.output
        assert "ova_cliova_sda" in runner.invoke(cli, ["provisioner", "ova", "list"]).output
        bad = runner.invoke(
            cli, ["-q", "provisioner", "ova", "upload", "x", str(tmp_path / "missing.ova"), "-p", POOL]
        )
        assert bad.exit_code != 0 and "is not a file" in bad.output
        removed = runner.invoke(cli, ["provisioner", "ova", "remove", "cliova", "-y"])
        assert removed.exit_code == 0, removed.output
    assert not volumes.exists(ceph_client, POOL, "ova_cliova_sda")
