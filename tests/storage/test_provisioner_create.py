"""``POST /provisioner/create`` end to end below QEMU: a real PostgreSQL holds the profile,
the task runs on a real node loop (libvirt's test driver) over the session's real Ceph and
ZooKeeper, the install script's hooks run in the real sandbox. A failure at any stage
leaves nothing behind."""

from __future__ import annotations

import json
import os

import pytest
from lxml import etree

from pvc.storage import volumes
from tests.helpers import wait_for
from tests.storage.conftest import POOL
from tests.storage.provisioner_harness import SCRIPT, call, create, ok, profile

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="install scripts run as pvcprov (needs root)")

MIB = 1024 * 1024
GIB = 1024 * MIB


def test_a_profile_becomes_a_started_vm_on_a_copy_on_write_clone(prov_api, ceph_client, base_image):
    client, _ = prov_api
    profile(client, base_image)
    task = create(client, "prov1", arg="flavour=special")
    assert task["state"] == "SUCCESS", task
    result = task["result"]
    assert set(result["stages"]) >= {"verify", "volumes", "create", "define", "start"}
    assert any("installing prov1 from web with special" in line for line in result["log"])
    assert any("disks ['prov1_sda'] monitors 1" in line for line in result["log"])
    # the disk is a clone of the base snapshot, grown to the template's size
    made = volumes.info(ceph_client, POOL, "prov1_sda")
    assert made.size == GIB
    assert made.to_dict()["parent"] == {"pool": POOL, "volume": base_image, "snapshot": "golden"}
    [vm] = ok(client, "GET", "/vm/prov1")
    assert vm["profile"] == "web"
    assert vm["vcpu"] == 1 and vm["memory"] == 64
    root = etree.fromstring(vm["xml"].encode())
    assert root.get("type") == "qemu"
    assert root.find("devices/disk/source").get("name") == f"{POOL}/prov1_sda"
    assert root.find("devices/disk/source/host") is not None  # the monitors, from the monitor map
    wait_for(lambda: ok(client, "GET", "/vm/prov1")[0]["state"] == "start", 20)


def test_creations_are_listed_with_their_vm_profile_and_outcome(prov_api, base_image):
    client, _ = prov_api
    profile(client, base_image)
    status, body = call(client, "POST", "/provisioner/create", name="prov10", profile="web", start_vm="false")
    assert status == 202
    done = create(client, "prov11", arg="fail_in=setup")
    assert done["state"] == "FAILURE"
    wait_for(lambda: call(client, "GET", f"/tasks/{body['task_id']}")[1]["state"] == "SUCCESS", 60)
    status, listed = call(client, "GET", "/provisioner/status")
    assert status == 200
    by_vm = {item["vm"]: item for item in listed}
    assert by_vm["prov10"]["state"] == "SUCCESS" and by_vm["prov10"]["profile"] == "web"
    assert by_vm["prov10"]["current"] == by_vm["prov10"]["total"] == 7
    assert by_vm["prov11"]["state"] == "FAILURE"
    status, one = call(client, "GET", f"/provisioner/status/{body['task_id']}")
    assert status == 200 and one["vm"] == "prov10" and "created from profile web" in one["result"]["message"]
    assert call(client, "GET", "/provisioner/status/nope")[0] == 404
    assert call(client, "GET", "/provisioner/status/..%2f..")[0] == 404


def test_no_start_leaves_the_vm_stopped_and_no_define_makes_only_volumes(prov_api, ceph_client, base_image):
    client, _ = prov_api
    profile(client, base_image)
    assert create(client, "prov2", start_vm="false")["state"] == "SUCCESS"
    assert ok(client, "GET", "/vm/prov2")[0]["state"] == "stop"
    task = create(client, "prov3", define_vm="false")
    assert task["state"] == "SUCCESS" and "not defined" in task["result"]["message"]
    assert volumes.exists(ceph_client, POOL, "prov3_sda")
    assert call(client, "GET", "/vm/prov3")[0] == 404


@pytest.mark.parametrize("stage", ["setup", "install"])
def test_a_failing_hook_fails_the_task_naming_the_stage_and_leaves_nothing(
    prov_api, ceph_client, base_image, stage
):
    client, _ = prov_api
    profile(client, base_image)
    task = create(client, "prov4", arg=f"fail_in={stage}")
    assert task["state"] == "FAILURE"
    message = task["result"]["message"] if isinstance(task["result"], dict) else str(task["result"])
    assert f"failed at stage {stage}" in message + task.get("status", "")
    assert "everything it made was removed" in message + task.get("status", "")
    assert not volumes.exists(ceph_client, POOL, "prov4_sda")
    assert call(client, "GET", "/vm/prov4")[0] == 404


def test_xml_from_a_script_is_checked_without_admin_rights(prov_api, ceph_client, base_image):
    client, _ = prov_api
    hostile = (
        "def create(vm):\n"
        "    return ('<domain type=\"qemu\"><name>' + vm.name + '</name><memory unit=\"MiB\">64</memory>'\n"
        "            '<vcpu>1</vcpu><os><type arch=\"x86_64\">hvm</type></os><devices>'\n"
        '            \'<disk type="file" device="disk"><source file="/etc/shadow"/>\'\n'
        '            \'<target dev="vda" bus="virtio"/></disk></devices></domain>\')\n'
    )
    profile(client, base_image, script=hostile)
    task = create(client, "prov5")
    assert task["state"] == "FAILURE"
    text = str(task)
    assert "failed at stage define" in text
    assert not volumes.exists(ceph_client, POOL, "prov5_sda")
    assert call(client, "GET", "/vm/prov5")[0] == 404


def test_a_kernel_outside_the_image_directories_is_refused(prov_api, ceph_client, base_image):
    client, _ = prov_api
    profile(client, base_image, script="def create(vm):\n    return {'kernel': '/etc/shadow'}\n")
    task = create(client, "prov9")
    assert task["state"] == "FAILURE" and "failed at stage define" in str(task)
    assert not volumes.exists(ceph_client, POOL, "prov9_sda")


def test_bad_requests_are_refused_before_any_task(prov_api, base_image):
    client, _ = prov_api
    profile(client, base_image)
    status, body = call(client, "POST", "/provisioner/create", name="x1", profile="nope")
    assert status == 404 and "Profile 'nope' not found" in body["message"]
    status, body = call(client, "POST", "/provisioner/create", name="bad name!", profile="web")
    assert status == 400 and "not valid" in body["message"]
    status, body = call(client, "POST", "/provisioner/create", name="x2", profile="web", arg="=v")
    assert status == 400 and "key=value" in body["message"]
    # a profile whose pool does not exist
    ok(client, "POST", "/provisioner/template/storage", name="nopool")
    ok(
        client,
        "POST",
        "/provisioner/template/storage/nopool/disk",
        disk_id="sda",
        pool="missing",
        disk_size=1,
    )
    ok(client, "PUT", "/provisioner/profile/web", storage_template="nopool")
    status, body = call(client, "POST", "/provisioner/create", name="x3", profile="web")
    assert status == 400 and "pool 'missing' does not exist" in body["message"]
    # a network template naming a network the cluster does not have
    ok(client, "POST", "/provisioner/template/network", name="nets")
    ok(client, "POST", "/provisioner/template/network/nets/net", vni=4242)
    ok(client, "PUT", "/provisioner/profile/web", storage_template="", network_template="nets")
    status, body = call(client, "POST", "/provisioner/create", name="x4", profile="web")
    assert status == 400 and "network 4242" in body["message"]
    assert call(client, "GET", "/tasks")[1] is not None


def test_the_cli_creates_and_waits_showing_the_outcome(prov_api, base_image, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from pvc.cli.main import cli
    from tests.api.conftest import TOKENS, served_with_cli, settings

    client, context = prov_api
    profile(client, base_image)
    context.settings = settings(auth=True)
    client.environ_base["HTTP_X_API_KEY"] = TOKENS["admin"]
    runner = CliRunner()
    with served_with_cli(context, tmp_path, monkeypatch):
        done = runner.invoke(cli, ["provisioner", "create", "prov6", "web", "-a", "flavour=cli", "-S"])
        assert done.exit_code == 0, done.output
        assert "SUCCESS" in done.output and "prov6" in done.output
        failed = runner.invoke(cli, ["provisioner", "create", "prov7", "web", "-a", "fail_in=install"])
        assert failed.exit_code == 1
        assert "FAILURE" in failed.output and "stage install" in failed.output
        queued = runner.invoke(cli, ["provisioner", "create", "prov8", "web", "--no-wait", "-D"])
        assert queued.exit_code == 0 and "Task ID:" in queued.output
        listed = runner.invoke(cli, ["-q", "provisioner", "status", "-f", "json"])
        assert listed.exit_code == 0, listed.output and {"prov6", "prov7"} <= {
            t["vm"] for t in json.loads(listed.output or "null")
        }
        shown = runner.invoke(cli, ["provisioner", "status"])
        assert shown.exit_code == 0 and "prov7" in shown.output and "FAILURE" in shown.output
    assert ok(client, "GET", "/vm/prov6")[0]["state"] == "stop"


def test_a_script_too_large_to_queue_is_refused_before_any_task(prov_api, base_image):
    client, _ = prov_api
    padding = "#" + "x" * 1000 + "\n"
    profile(client, base_image, script=SCRIPT + padding * 600)  # ~600 KiB: stored, but too big for a task
    status, body = call(client, "POST", "/provisioner/create", name="big1", profile="web")
    assert status == 400 and "more than a task may carry" in body["message"]


def _mac_by_number_profile(client, base_image) -> None:
    """Profile ``web`` with a NIC on network 4243 whose MAC comes from the VM's number."""
    profile(client, base_image)
    network = {
        "vni": 4243,
        "description": "macs",
        "nettype": "managed",
        "domain": "macs.test",
        "ip4_network": "10.243.0.0/24",
        "ip4_gateway": "10.243.0.1",
    }
    ok(client, "POST", "/network", **network)
    ok(
        client,
        "POST",
        "/provisioner/template/network",
        name="bynumber",
        mac_template="{prefix}:00:{vmid}:{netid}",
    )
    ok(client, "POST", "/provisioner/template/network/bynumber/net", vni=4243)
    ok(client, "PUT", "/provisioner/profile/web", network_template="bynumber")


def test_a_mac_address_another_vm_uses_is_refused(prov_api, base_image):
    client, _ = prov_api
    _mac_by_number_profile(client, base_image)
    task = create(client, "mac1", start_vm="false")
    assert task["state"] == "SUCCESS", task
    [vm] = ok(client, "GET", "/vm/mac1")
    assert "52:54:00:00:01:00" in vm["xml"]
    status, body = call(client, "POST", "/provisioner/create", name="other1", profile="web")
    assert status == 400 and "52:54:00:00:01:00" in body["message"] and "mac1" in body["message"]


@pytest.mark.parametrize("second_mac", ["52:54:00:00:03:00", "52:54:00:77:00:01"])
def test_mac_addresses_in_a_scripts_xml_are_checked_when_the_vm_is_defined(
    prov_api, ceph_client, base_image, second_mac
):
    client, _ = prov_api
    _mac_by_number_profile(client, base_image)
    assert create(client, "mac3", start_vm="false")["state"] == "SUCCESS"  # takes 52:54:00:00:03:00
    nic = '<interface type="bridge"><mac address="{}"/><source bridge="vmbr4243"/></interface>'
    script = (
        "def create(vm):\n"
        "    return ('<domain type=\"qemu\"><name>' + vm.name + '</name><memory unit=\"MiB\">64</memory>'\n"
        "            '<vcpu>1</vcpu><os><type arch=\"x86_64\">hvm</type></os><devices>'\n"
        f"            '{nic.format('52:54:00:77:00:01')}{nic.format(second_mac)}</devices></domain>')\n"
    )
    ok(client, "POST", "/provisioner/script", name="ownxml", data=script)
    ok(client, "PUT", "/provisioner/profile/web", script="ownxml")
    task = create(client, "mac4")
    assert task["state"] == "FAILURE"
    text = str(task)
    assert "failed at stage define" in text
    if second_mac == "52:54:00:00:03:00":
        assert "MAC address 52:54:00:00:03:00 for VM 'mac4' is already used by VM 'mac3'" in text
    else:
        assert "VM 'mac4' has two NICs with MAC address 52:54:00:77:00:01" in text
    assert not volumes.exists(ceph_client, POOL, "mac4_sda")
    assert call(client, "GET", "/vm/mac4")[0] == 404


def test_a_clone_that_cannot_grow_is_not_left_behind(prov_api, ceph_client, base_image):
    client, _ = prov_api
    profile(client, base_image, size_gb=1024 * 1024)  # 1 PiB: more than the pool has
    task = create(client, "huge1")
    assert task["state"] == "FAILURE" and "failed at stage volumes" in str(task), task
    assert not volumes.exists(ceph_client, POOL, "huge1_sda")
