"""Request helpers of the provisioner's storage tests (their fixtures are in the conftest)."""

from __future__ import annotations

from tests.helpers import wait_for
from tests.storage.api_harness import PREFIX
from tests.storage.conftest import POOL

#: An install script that logs what it sees and fails where the argument fail_in says.
SCRIPT = (
    "def setup(vm):\n"
    "    if 'fail_in' in vm.arguments and vm.arguments['fail_in'] == 'setup':\n"
    "        fail('told to fail in setup')\n"
    "def install(vm):\n"
    "    log('installing', vm.name, 'from', vm.profile, 'with', vm.arguments.get('flavour'))\n"
    "    log('disks', [v.volume for v in vm.volumes], 'monitors', len(vm.ceph_monitors))\n"
    "    if vm.arguments.get('fail_in') == 'install':\n"
    "        raise RuntimeError('install broke')\n"
)


def call(client, method: str, path: str, **data):
    reply = client.open(f"{PREFIX}{path}", method=method, data=data)
    return reply.status_code, reply.get_json()


def ok(client, method: str, path: str, **data):
    status, body = call(client, method, path, **data)
    assert status == 200, (method, path, status, body)
    return body


def create(client, name: str, profile_name: str = "web", **data) -> dict:
    status, body = call(client, "POST", "/provisioner/create", name=name, profile=profile_name, **data)
    assert status == 202, body
    return wait_for(
        lambda: (
            (s := call(client, "GET", f"/tasks/{body['task_id']}")[1])["state"] in ("SUCCESS", "FAILURE")
            and s
        ),
        60,
    )


def profile(client, base: str, *, name: str = "web", script: str = SCRIPT, size_gb: int = 1) -> None:
    ok(
        client,
        "POST",
        "/provisioner/template/system",
        name=name,
        vcpus=1,
        vram=64,
        serial="true",
        vnc="false",
    )
    ok(client, "POST", "/provisioner/template/storage", name=name)
    ok(
        client,
        "POST",
        f"/provisioner/template/storage/{name}/disk",
        disk_id="sda",
        pool=POOL,
        source_volume=f"{base}@golden",
        disk_size=size_gb,
    )
    ok(client, "POST", "/provisioner/script", name=name, data=script)
    ok(
        client,
        "POST",
        "/provisioner/profile",
        name=name,
        system_template=name,
        storage_template=name,
        script=name,
        arg="flavour=plain",
    )
