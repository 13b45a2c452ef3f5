"""Provisioner templates, userdata, scripts and profiles through the API, on a real
PostgreSQL: the v1 shapes, and bad input answered 400/404 with nothing stored."""

from __future__ import annotations

import pytest

from pvc.api.app import PREFIX

SCRIPT = "def install(vm):\n    pass\n"
CLOUD = "#cloud-config\nhostname: {vm_name}\npackages: [htop]\n"


def call(client, method: str, path: str, **data):
    reply = client.open(PREFIX + path, method=method, data=data)
    return reply.status_code, reply.get_json()


def ok(client, method: str, path: str, **data):
    status, body = call(client, method, path, **data)
    assert status == 200, (method, path, status, body)
    return body


def system(client, name: str = "small", **extra):
    return ok(
        client,
        "POST",
        "/provisioner/template/system",
        name=name,
        vcpus=2,
        vram=1024,
        serial="true",
        vnc="false",
        **extra,
    )


def test_system_templates_in_the_v1_shape(prov):
    assert (
        "Added"
        in system(prov, node_limit="hv1, hv2", node_selector="mem", migration_method="live")["message"]
    )
    [template] = ok(prov, "GET", "/provisioner/template/system/small")
    assert template == {
        "id": template["id"],
        "name": "small",
        "vcpu_count": 2,
        "vram_mb": 1024,
        "serial": True,
        "vnc": False,
        "vnc_bind": None,
        "node_limit": "hv1,hv2",
        "node_selector": "mem",
        "node_autostart": False,
        "migration_method": "live",
        "migration_max_downtime": None,
    }
    ok(prov, "PUT", "/provisioner/template/system/small", vcpus=4, vnc="true", vnc_bind="0.0.0.0")
    [changed] = ok(prov, "GET", "/provisioner/template/system/small")
    assert (changed["vcpu_count"], changed["vram_mb"], changed["vnc"], changed["vnc_bind"]) == (
        4,
        1024,
        True,
        "0.0.0.0",
    )
    ok(prov, "POST", "/provisioner/template/system/big", vcpus=8, vram=8192, serial="false", vnc="false")
    assert [t["name"] for t in ok(prov, "GET", "/provisioner/template/system")] == ["big", "small"]
    assert [t["name"] for t in ok(prov, "GET", "/provisioner/template/system", limit="^sm")] == ["small"]
    every = ok(prov, "GET", "/provisioner/template")
    assert set(every) == {"system-templates", "network-templates", "storage-templates"}
    assert len(every["system-templates"]) == 2
    ok(prov, "DELETE", "/provisioner/template/system/big")
    assert call(prov, "GET", "/provisioner/template/system/big")[0] == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vcpus": 0}, "vcpus must be between"),
        ({"vram": 8}, "vram (MiB) must be between"),
        ({"node_selector": "fastest"}, "node_selector 'fastest' is not one of"),
        ({"migration_method": "teleport"}, "migration_method"),
        ({"vnc_bind": "not-an-ip", "vnc": "true"}, "is not an IP address"),
        ({"node_limit": "hv1,../x"}, "node_limit node name"),
        ({"name": "bad name"}, "is not valid"),
        ({"name": "x" * 200}, "is not valid"),
    ],
)
def test_bad_system_templates_are_refused_and_nothing_is_stored(prov, fields, message):
    data = {"name": "t1", "vcpus": 1, "vram": 512, "serial": "true", "vnc": "false", **fields}
    status, body = call(prov, "POST", "/provisioner/template/system", **data)
    assert status == 400 and message in str(body["message"]), body
    assert ok(prov, "GET", "/provisioner/template/system") == []


def test_a_system_template_needs_its_required_fields_and_a_new_name(prov):
    status, body = call(prov, "POST", "/provisioner/template/system", name="t1", vcpus=1)
    assert status == 400 and "vram" in str(body["message"])
    system(prov, "t1")
    status, body = call(
        prov, "POST", "/provisioner/template/system", name="t1", vcpus=1, vram=512, serial="true", vnc="false"
    )
    assert status == 400 and "already exists" in body["message"]
    assert call(prov, "PUT", "/provisioner/template/system/none", vcpus=1)[0] == 404


def test_network_templates_and_their_vnis(prov):
    ok(prov, "POST", "/provisioner/template/network", name="web", mac_template="52:54:00:{vmid}:{netid}")
    ok(prov, "POST", "/provisioner/template/network/web/net", vni=100)
    ok(prov, "POST", "/provisioner/template/network/web/net/200")
    status, body = call(prov, "POST", "/provisioner/template/network/web/net/100")
    assert status == 400 and "already has VNI 100" in body["message"]
    ok(prov, "POST", "/provisioner/template/network/web/net/100", permit_duplicate="true")
    [template] = ok(prov, "GET", "/provisioner/template/network/web")
    assert template["mac_template"] == "52:54:00:{vmid}:{netid}"
    assert [net["vni"] for net in template["networks"]] == [100, 200, 100]
    assert all(net["network_template"] == template["id"] for net in template["networks"])
    [one] = ok(prov, "GET", "/provisioner/template/network/web/net/200")
    assert one["vni"] == 200
    ok(prov, "DELETE", "/provisioner/template/network/web/net/100")
    assert [n["vni"] for n in ok(prov, "GET", "/provisioner/template/network/web/net")] == [100, 200]
    assert call(prov, "DELETE", "/provisioner/template/network/web/net/300")[0] == 404
    for bad in ("0", "abc", str(2**24)):
        assert call(prov, "POST", f"/provisioner/template/network/web/net/{bad}")[0] == 400
    status, body = call(prov, "POST", "/provisioner/template/network", name="x", mac_template="$(reboot)")
    assert status == 400 and "mac_template" in body["message"]
    assert call(prov, "POST", "/provisioner/template/network/nosuch/net", vni=5)[0] == 404


def test_storage_templates_and_their_disks(prov):
    ok(prov, "POST", "/provisioner/template/storage", name="standard")
    ok(
        prov,
        "POST",
        "/provisioner/template/storage/standard/disk",
        disk_id="sda",
        pool="vms",
        disk_size=10,
        filesystem="ext4",
        filesystem_arg=["-L", "root"],
        mountpoint="/",
    )
    ok(
        prov,
        "POST",
        "/provisioner/template/storage/standard/disk/sdb",
        pool="vms",
        source_volume="debian-base",
        disk_size=20,
    )
    [template] = ok(prov, "GET", "/provisioner/template/storage/standard")
    sda, sdb = template["disks"]
    assert sda == {
        "id": sda["id"],
        "storage_template": template["id"],
        "disk_id": "sda",
        "pool": "vms",
        "source_volume": None,
        "disk_size_gb": 10,
        "filesystem": "ext4",
        "filesystem_args": ["-L", "root"],
        "mountpoint": "/",
    }
    assert (sdb["source_volume"], sdb["disk_size_gb"]) == ("debian-base", 20)
    assert ok(prov, "GET", "/provisioner/template/storage/standard/disk/sdb")[0]["disk_id"] == "sdb"
    ok(prov, "DELETE", "/provisioner/template/storage/standard/disk/sdb")
    assert [d["disk_id"] for d in ok(prov, "GET", "/provisioner/template/storage/standard/disk")] == ["sda"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"disk_id": "sda"}, "already has disk sda"),
        ({"disk_id": "xyz"}, "is not a disk name"),
        ({"pool": "../etc"}, "Pool name"),
        ({"disk_size": None}, "needs disk_size"),
        ({"disk_size": 0}, "disk_size (GB) must be between"),
        ({"filesystem": "ntfs"}, "filesystem 'ntfs' is not one of"),
        ({"filesystem_arg": ["-O;reboot"]}, "not allowed"),
        ({"mountpoint": "home"}, "is not an absolute path"),
        ({"mountpoint": "/a/../../etc"}, "is not an absolute path"),
        ({"mountpoint": "/"}, "already mounts a disk at /"),
        ({"filesystem": None, "mountpoint": "/srv"}, "needs a filesystem"),
    ],
)
def test_bad_disks_are_refused(prov, fields, message):
    ok(prov, "POST", "/provisioner/template/storage", name="st")
    ok(
        prov,
        "POST",
        "/provisioner/template/storage/st/disk",
        disk_id="sda",
        pool="vms",
        disk_size=4,
        filesystem="ext4",
        mountpoint="/",
    )
    data = {"disk_id": "sdb", "pool": "vms", "disk_size": 4, "filesystem": "xfs", **fields}
    data = {key: value for key, value in data.items() if value is not None}
    status, body = call(prov, "POST", "/provisioner/template/storage/st/disk", **data)
    assert status == 400 and message in body["message"], body
    assert [d["disk_id"] for d in ok(prov, "GET", "/provisioner/template/storage/st/disk")] == ["sda"]


def test_userdata_and_scripts(prov):
    ok(prov, "POST", "/provisioner/userdata", name="basic", data=CLOUD)
    ok(prov, "POST", "/provisioner/script", name="noop", data=SCRIPT)
    [userdata] = ok(prov, "GET", "/provisioner/userdata/basic")
    assert userdata == {"id": userdata["id"], "name": "basic", "userdata": CLOUD}
    [script] = ok(prov, "GET", "/provisioner/script/noop")
    assert script["script"] == SCRIPT
    ok(prov, "PUT", "/provisioner/userdata/basic", data="#!/bin/sh\necho hello\n")
    assert ok(prov, "GET", "/provisioner/userdata/basic")[0]["userdata"].startswith("#!/bin/sh")
    assert [u["name"] for u in ok(prov, "GET", "/provisioner/userdata")] == ["basic"]
    status, body = call(
        prov, "POST", "/provisioner/userdata", name="broken", data="#cloud-config\nusers: [a\n"
    )
    assert status == 400 and "not valid YAML" in body["message"]
    status, body = call(prov, "POST", "/provisioner/userdata", name="list", data="#cloud-config\n- a\n")
    assert status == 400 and "not a YAML mapping" in body["message"]
    status, body = call(prov, "POST", "/provisioner/script", name="bad", data="def install(:\n")
    assert status == 400 and "not valid Python" in body["message"]
    assert call(prov, "POST", "/provisioner/script", name="empty", data="  \n")[0] == 400
    assert call(prov, "PUT", "/provisioner/script/nosuch", data=SCRIPT)[0] == 404
    assert [s["name"] for s in ok(prov, "GET", "/provisioner/script")] == ["noop"]
    ok(prov, "DELETE", "/provisioner/script/noop")
    assert call(prov, "GET", "/provisioner/script/noop")[0] == 404


def test_profiles_reference_what_exists_and_keep_it(prov):
    system(prov, "small")
    ok(prov, "POST", "/provisioner/template/network", name="web")
    ok(prov, "POST", "/provisioner/template/storage", name="standard")
    ok(prov, "POST", "/provisioner/userdata", name="basic", data=CLOUD)
    ok(prov, "POST", "/provisioner/script", name="clone", data=SCRIPT)
    ok(
        prov,
        "POST",
        "/provisioner/profile",
        name="webserver",
        system_template="small",
        network_template="web",
        storage_template="standard",
        userdata="basic",
        script="clone",
        arg=["image=debian", "size=10"],
    )
    [profile] = ok(prov, "GET", "/provisioner/profile/webserver")
    assert profile == {
        "id": profile["id"],
        "name": "webserver",
        "profile_type": "provisioner",
        "system_template": "small",
        "network_template": "web",
        "storage_template": "standard",
        "userdata": "basic",
        "script": "clone",
        "ova": None,
        "arguments": ["image=debian", "size=10"],
    }
    # What a profile uses stays.
    for path in (
        "/provisioner/template/system/small",
        "/provisioner/template/network/web",
        "/provisioner/template/storage/standard",
        "/provisioner/userdata/basic",
        "/provisioner/script/clone",
    ):
        status, body = call(prov, "DELETE", path)
        assert status == 400 and "used by profile(s) webserver" in body["message"], (path, body)
    ok(prov, "PUT", "/provisioner/profile/webserver", network_template="", arg=["image=ubuntu"])
    [changed] = ok(prov, "GET", "/provisioner/profile/webserver")
    assert changed["network_template"] is None and changed["arguments"] == ["image=ubuntu"]
    ok(prov, "PUT", "/provisioner/profile/webserver", arg=[""])
    assert ok(prov, "GET", "/provisioner/profile/webserver")[0]["arguments"] == []
    assert [p["name"] for p in ok(prov, "GET", "/provisioner/profile")] == ["webserver"]
    ok(prov, "DELETE", "/provisioner/profile/webserver")
    ok(prov, "DELETE", "/provisioner/template/network/web")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"system_template": "nosuch"}, "System template 'nosuch' not found"),
        ({"script": "nosuch"}, "Script 'nosuch' not found"),
        ({"script": None}, "needs a script"),
        ({"profile_type": "magic"}, "profile_type 'magic' is not one of"),
        ({"profile_type": "ova"}, "needs an OVA"),
        ({"arg": ["no-equals"]}, "is not key=value"),
        ({"arg": ["1bad=x"]}, "is not key=value"),
    ],
)
def test_bad_profiles_are_refused(prov, fields, message):
    system(prov, "small")
    ok(prov, "POST", "/provisioner/script", name="s", data=SCRIPT)
    data = {"name": "p", "system_template": "small", "script": "s", **fields}
    data = {key: value for key, value in data.items() if value is not None}
    status, body = call(prov, "POST", "/provisioner/profile", **data)
    assert status in (400, 404) and message in body["message"], body
    assert ok(prov, "GET", "/provisioner/profile") == []


def test_without_a_database_the_provisioner_answers_503(api):
    api, _ = api
    status, body = call(api, "GET", "/provisioner/template")
    assert status == 503 and "database" in body["message"]
    status, body = call(api, "POST", "/provisioner/userdata", name="x", data=CLOUD)
    assert status == 503


def test_hostile_input_is_refused_with_400_or_404_never_500(prov):
    status, body = call(
        prov, "POST", "/provisioner/userdata", name="deep", data="#cloud-config\n" + "[" * 20000
    )
    assert status == 400 and "nested too deeply" in body["message"]
    status, body = call(prov, "POST", "/provisioner/script", name="deep", data="-" * 200000 + "1")
    assert status == 400
    status, body = call(prov, "POST", "/provisioner/userdata", name="nul", data="#!/bin/sh\n\x00\n")
    assert status == 400 and "NUL" in body["message"]
    status, body = call(prov, "POST", "/provisioner/template/network", name="m", mac_template="0" * 100)
    assert status == 400 and "mac_template" in body["message"]
    status, body = call(
        prov,
        "POST",
        "/provisioner/template/system",
        name="z",
        vcpus=1,
        vram=512,
        serial="true",
        vnc="true",
        vnc_bind="fe80::1%" + "a" * 300,
    )
    assert status == 400 and "zone" in body["message"]
    assert call(prov, "GET", "/provisioner/template/system/a%00b")[0] == 404
    assert call(prov, "GET", "/provisioner/userdata/" + "x" * 300)[0] == 404
