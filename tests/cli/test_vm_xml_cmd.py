"""``pvc vm vcpu|memory|network|volume``: the edits the CLI makes to a VM's domain XML."""

from __future__ import annotations

import json

from lxml import etree

from pvc.domain_xml import edit as vm_xml
from tests.cli.conftest import Invoke
from tests.cli.fakeapi_vm import FakeVmApi, domain_xml
from tests.cli.vm_fixtures import api_port_fixture, fake_api_fixture, last_put, stored_xml  # noqa: F401


def test_vcpu_get(pvc: Invoke, connected: int) -> None:
    pretty = pvc("vm", "vcpu", "get", "vm2").stdout
    assert "vCPUs:            4" in pretty and "Topology (S/C/T): 1/2/2" in pretty
    assert pvc("vm", "vcpu", "get", "vm1", "-f", "raw").stdout == "2\n"
    assert json.loads(pvc("vm", "vcpu", "get", "vm2", "-f", "json").stdout) == {
        "name": "vm2",
        "vcpus": 4,
        "sockets": 1,
        "cores": 2,
        "threads": 2,
    }


def test_vcpu_set_no_restart(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "vcpu", "set", "vm1", "4", "-t", "1,2,2", "--no-restart")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Modified VM vm1"
    assert "takes effect when VM vm1 next restarts" in result.stderr
    args, root = last_put(fake_api, "vm1")
    assert args == {"restart": ["false"]}
    assert vm_xml.read_vcpus(root) == (4, vm_xml.Topology(1, 2, 2))
    assert fake_api.calls("POST", "/vm/vm1/state") == []


def test_vcpu_set_restart_choices(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    refused = pvc("vm", "vcpu", "set", "vm1", "3", "-r")
    assert refused.exit_code == 0 and "Restart VM vm1? [y/N]" in refused.stderr
    assert fake_api.calls("PUT") == []
    restarted = pvc("vm", "vcpu", "set", "vm1", "3", "-r", "-y")
    assert restarted.stdout.strip() == "Modified VM vm1 and restarted"
    assert last_put(fake_api, "vm1")[0] == {"restart": ["true"]}
    asked = pvc("vm", "vcpu", "set", "vm1", "5", input="y\n")
    assert "Restart VM vm1 to apply the change? [y/N]" in asked.stderr
    assert last_put(fake_api, "vm1")[0] == {"restart": ["true"]}
    declined = pvc("vm", "vcpu", "set", "vm1", "6", input="n\n")
    assert declined.exit_code == 0 and last_put(fake_api, "vm1")[0] == {"restart": ["false"]}
    assert stored_xml(fake_api, "vm1").findtext("vcpu") == "6"
    for quiet in (["vm", "vcpu", "set", "vm1", "7", "-y"], ["-u", "vm", "vcpu", "set", "vm1", "7"]):
        result = pvc(*quiet)
        assert result.exit_code == 0 and "[y/N]" not in result.stderr
        assert last_put(fake_api, "vm1")[0] == {"restart": ["false"]}
    stopped = pvc("vm", "vcpu", "set", "vm2", "2")
    assert stopped.exit_code == 0 and "[y/N]" not in stopped.stderr and "next restarts" not in stopped.stderr
    assert last_put(fake_api, "vm2")[0] == {"restart": ["false"]}
    assert vm_xml.read_vcpus(stored_xml(fake_api, "vm2")) == (2, vm_xml.Topology(1, 2, 1))


def test_vcpu_set_errors(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    mismatch = pvc("vm", "vcpu", "set", "vm1", "3", "-t", "1,2,2", "-R")
    assert mismatch.exit_code == 1
    assert mismatch.stderr.splitlines()[-1] == "Error: VM vm1: topology 1,2,2 gives 4 vCPUs, not 3"
    assert pvc("vm", "vcpu", "set", "vm1", "none", "-R").stderr.splitlines()[-1] == (
        "Error: VCPUS must be a positive whole number, not 'none'"
    )
    missing = pvc("vm", "vcpu", "set", "ghost", "2", "-R")
    assert missing.exit_code == 1 and missing.stderr.splitlines()[-1] == "Error: VM not found"
    assert fake_api.calls("PUT") == []


def test_memory_get_and_set(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    assert "Memory: 2048 MiB" in pvc("vm", "memory", "get", "vm1").stdout
    assert pvc("vm", "memory", "get", "vm2", "-f", "raw").stdout == "4096\n"
    assert json.loads(pvc("vm", "memory", "get", "vm1", "-f", "json").stdout) == {
        "name": "vm1",
        "memory": 2048,
    }
    result = pvc("vm", "memory", "set", "vm1", "4G", "-R")
    assert result.exit_code == 0, result.output
    args, root = last_put(fake_api, "vm1")
    assert args == {"restart": ["false"]}
    assert vm_xml.read_memory(root) == 4096
    assert root.find("currentMemory").text == "4096"
    bad = pvc("vm", "memory", "set", "vm1", "lots", "-R")
    assert bad.exit_code == 1 and "memory must be a positive size" in bad.stderr


# Network interfaces.


def test_network_get(pvc: Invoke, connected: int) -> None:
    pretty = pvc("vm", "network", "get", "vm2").stdout.splitlines()
    assert pretty[0].split() == ["Network", "Source", "MAC", "Address", "Model", "Type"]
    assert pretty[2].split() == ["100", "vmbr100", "52:54:00:00:00:02", "virtio", "bridge"]
    assert pvc("vm", "network", "get", "vm2", "-f", "raw").stdout == "100\n200\n"
    assert [n["vni"] for n in json.loads(pvc("vm", "network", "get", "vm2", "-f", "json").stdout)] == [
        100,
        200,
    ]


def test_network_add_live(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "network", "add", "vm1", "200", "-a", "52:54:00:AB:CD:EF", "-m", "e1000")
    assert result.exit_code == 0, result.output
    assert "[y/N]" not in result.stderr
    assert result.stdout.splitlines() == ["Device done", "Modified VM vm1"]
    device = fake_api.calls("POST", "/vm/vm1/device")[0]
    assert device.args == {}
    assert device.form["xml"] == [
        '<interface type="bridge"><mac address="52:54:00:ab:cd:ef"/><source bridge="vmbr200"/>'
        '<model type="e1000"/></interface>'
    ]
    assert fake_api.calls("GET", "/tasks/cafe0001")
    args, root = last_put(fake_api, "vm1")
    assert args == {"restart": ["false"]}
    assert [vm_xml.interface_mac(i) for i in vm_xml.find_interfaces(root, bridge="vmbr200")] == [
        "52:54:00:ab:cd:ef"
    ]
    order = [(c.method, c.path) for c in fake_api.requests if c.path.startswith("/vm/vm1")]
    assert order == [("GET", "/vm/vm1"), ("POST", "/vm/vm1/device"), ("PUT", "/vm/vm1")]


def test_network_add_not_live(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    stopped = pvc("vm", "network", "add", "vm2", "300")
    assert stopped.exit_code == 0, stopped.output
    assert fake_api.calls("POST", "/vm/vm2/device") == []
    interfaces = vm_xml.find_interfaces(last_put(fake_api, "vm2")[1], bridge="vmbr300")
    assert len(interfaces) == 1 and vm_xml.interface_mac(interfaces[0]).startswith("52:54:00:")
    config_only = pvc("vm", "network", "add", "vm1", "300", "-L", "-R")
    assert config_only.exit_code == 0
    assert fake_api.calls("POST", "/vm/vm1/device") == []
    assert last_put(fake_api, "vm1")[0] == {"restart": ["false"]}
    restart = pvc("vm", "network", "add", "vm1", "400", "-r", "-y")
    assert restart.exit_code == 0
    assert fake_api.calls("POST", "/vm/vm1/device") == []
    assert last_put(fake_api, "vm1")[0] == {"restart": ["true"]}


def test_network_add_errors(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    sriov = pvc("vm", "network", "add", "vm1", "100", "--sriov", "--sriov-mode", "bad")
    assert sriov.exit_code == 2 and "'bad' is not one of" in sriov.stderr
    bad_net = pvc("vm", "network", "add", "vm1", "upstream")
    assert "a network is given by its VNI" in bad_net.stderr and bad_net.exit_code == 1
    bad_mac = pvc("vm", "network", "add", "vm1", "100", "-a", "zz")
    assert "'zz' is not a MAC address" in bad_mac.stderr
    duplicate = pvc("vm", "network", "add", "vm1", "100", "-a", "52:54:00:00:00:01")
    assert duplicate.stderr.splitlines()[-1] == (
        "Error: VM vm1: the VM already has an interface with MAC address 52:54:00:00:00:01"
    )
    assert fake_api.calls("PUT") == [] and fake_api.calls("POST", "/vm/vm1/device") == []


def test_network_add_failed_hotplug_changes_nothing(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    fake_api.device_task = [
        {"state": "RUNNING", "current": 0, "total": 1},
        {"state": "FAILURE", "status": "no"},
    ]
    result = pvc("vm", "network", "add", "vm1", "200")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: Attaching the device to running VM vm1 failed")
    assert fake_api.calls("PUT") == []


def test_network_remove(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    single = pvc("vm", "network", "remove", "vm2", "100", "-R")
    assert single.exit_code == 0, single.output
    assert vm_xml.find_interfaces(last_put(fake_api, "vm2")[1], bridge="vmbr100") == []
    fake_api.vms["vm1"]["xml"] = domain_xml(
        "vm1", "u", nics=(("vmbr100", "52:54:00:00:00:01"), ("vmbr100", "52:54:00:00:00:05"))
    )
    two = pvc("vm", "network", "remove", "vm1", "100")
    assert two.exit_code == 1
    assert "the VM has 2 interfaces on bridge vmbr100; choose one by its MAC address" in two.stderr
    result = pvc("vm", "network", "remove", "vm1", "-m", "52:54:00:00:00:05")
    assert result.exit_code == 0, result.output
    device = fake_api.calls("DELETE", "/vm/vm1/device")[0]
    assert device.args == {}
    assert etree.fromstring(device.form["xml"][0]).find("mac").get("address") == "52:54:00:00:00:05"
    root = last_put(fake_api, "vm1")[1]
    assert [vm_xml.interface_mac(i) for i in vm_xml.find_interfaces(root)] == ["52:54:00:00:00:01"]
    nothing = pvc("vm", "network", "remove", "vm1")
    assert nothing.exit_code == 2 and "Give NET, -m/--mac-address or both" in nothing.stderr


# Disks.


def test_volume_get(pvc: Invoke, connected: int) -> None:
    pretty = pvc("vm", "volume", "get", "vm1").stdout.splitlines()
    assert pretty[0].split() == ["Volume", "Type", "Target", "Bus"]
    assert pretty[2].split() == ["vms/vm1_disk0", "rbd", "sda", "scsi"]
    assert pvc("vm", "volume", "get", "vm2", "-f", "raw").stdout == "vms/vm2_disk0\n"
    assert json.loads(pvc("vm", "volume", "get", "vm1", "-f", "json").stdout)[0]["dev"] == "sda"


def test_volume_add(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "volume", "add", "vm1", "vms/data")
    assert result.exit_code == 0, result.output
    device = fake_api.calls("POST", "/vm/vm1/device")[0]
    assert device.form["xml"] == [
        '<disk type="network" device="disk"><driver name="qemu" type="raw" cache="none"/>'
        '<source protocol="rbd" name="vms/data"/><target dev="sdb" bus="scsi"/></disk>'
    ]
    args, root = last_put(fake_api, "vm1")
    assert args == {"restart": ["false"]} and vm_xml.disk_targets(root) == ["sda", "sdb"]
    virtio = pvc("vm", "volume", "add", "vm2", "vms/more", "-b", "virtio")
    assert virtio.exit_code == 0
    assert fake_api.calls("POST", "/vm/vm2/device") == []
    assert vm_xml.disk_targets(last_put(fake_api, "vm2")[1]) == ["vda", "vdb"]
    chosen = pvc("vm", "volume", "add", "vm2", "/srv/scratch.img", "-t", "file", "-d", "sdz", "-R")
    assert chosen.exit_code == 0
    disk = last_put(fake_api, "vm2")[1].findall("devices/disk")[-1]
    assert disk.find("source").get("file") == "/srv/scratch.img" and disk.find("target").get("dev") == "sdz"
    again = pvc("vm", "volume", "add", "vm1", "vms/data")
    assert again.exit_code == 1 and "volume vms/data is already attached to the VM" in again.stderr
    bad = pvc("vm", "volume", "add", "vm1", "data")
    assert bad.exit_code == 1 and "an RBD volume is given as POOL/VOLUME" in bad.stderr


def test_volume_remove(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "volume", "remove", "vm1", "vms/vm1_disk0")
    assert result.exit_code == 0, result.output
    device = fake_api.calls("DELETE", "/vm/vm1/device")[0]
    assert etree.fromstring(device.form["xml"][0]).find("source").get("name") == "vms/vm1_disk0"
    assert vm_xml.disk_targets(last_put(fake_api, "vm1")[1]) == []
    missing = pvc("vm", "volume", "remove", "vm2", "vms/nothing")
    assert missing.exit_code == 1
    assert missing.stderr.splitlines()[-1] == "Error: VM vm2: volume vms/nothing is not attached to the VM"
    offline = pvc("vm", "volume", "remove", "vm2", "vms/vm2_disk0", "--no-live")
    assert offline.exit_code == 0 and fake_api.calls("DELETE", "/vm/vm2/device") == []
