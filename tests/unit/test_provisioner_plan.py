"""The create plan's pure parts: MAC addresses, script arguments, VM names, domain XML."""

from __future__ import annotations

import pytest
from lxml import etree

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner import build, plan
from pvc.domain_xml.parse import parse


def test_mac_templates_fill_in_prefix_vm_number_and_nic_position():
    assert plan.mac_addresses("{prefix}:ab:{vmid}:{netid}", "web12", 2) == [
        "52:54:00:ab:0c:00",
        "52:54:00:ab:0c:01",
    ]
    # a name without a number gets a stable derived one
    first = plan.mac_addresses("{prefix}:00:{vmid}:{netid}", "db", 1)
    assert first == plan.mac_addresses("{prefix}:00:{vmid}:{netid}", "db", 1)


def test_without_a_template_each_nic_gets_a_stable_distinct_qemu_address():
    macs = plan.mac_addresses(None, "web1", 3)
    assert len(set(macs)) == 3 and all(mac.startswith("52:54:00:") for mac in macs)
    assert macs == plan.mac_addresses(None, "web1", 3)
    assert macs != plan.mac_addresses(None, "web2", 3)


@pytest.mark.parametrize(
    "template, why",
    [
        ("{prefix}:{vmid}:{netid}", "not a unicast MAC"),  # five octets
        ("01:00:00:00:{vmid}:{netid}", "not a unicast MAC"),  # multicast
        ("{prefix}:00:00:{vmid}", "the same address to two NICs"),
    ],
)
def test_templates_that_cannot_give_valid_distinct_addresses_are_refused(template, why):
    with pytest.raises(ClusterError, match=why):
        plan.mac_addresses(template, "web1", 2)


def test_request_arguments_override_the_profiles():
    assert plan.arguments(["a=1", "b=2", ""], ["b=3", "c=x=y"]) == {"a": "1", "b": "3", "c": "x=y"}
    with pytest.raises(ClusterError, match="key=value"):
        plan.arguments([], ["no-equals"])
    with pytest.raises(ClusterError, match="key=value"):
        plan.arguments([], ["1x=2"])


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 64, "web/1", "a\x00b"])
def test_vm_names_are_checked(name):
    with pytest.raises(ClusterError, match="not valid"):
        plan.check_vm_name(name)


def test_domain_xml_from_the_plan_has_the_templates_resources_disks_and_nics():
    vm_data = {
        "name": "web1",
        "system": {"vcpu_count": 2, "vram_mb": 512, "serial": True, "vnc": True, "vnc_bind": None},
        "volumes": [
            {"pool": "vms", "volume": "web1_sda"},
            {"pool": "fast", "volume": "web1_sdb"},
        ],
        "networks": [{"vni": 100, "mac": "52:54:00:00:01:00", "bridge": "vmbr100"}],
    }
    xml = build.domain_xml(
        vm_data,
        domain_type="qemu",
        monitors=[("10.0.0.1", 6789)],
        disk_auth=("vm", "1" * 8 + "-0000-0000-0000-" + "0" * 12),
    )
    _, summary = parse(xml)
    assert (summary.name, summary.vcpus, summary.memory_mib, summary.domain_type) == ("web1", 2, 512, "qemu")
    root = etree.fromstring(xml.encode())
    sources = [s.get("name") for s in root.iterfind("devices/disk/source")]
    assert sources == ["vms/web1_sda", "fast/web1_sdb"]
    assert root.find("devices/disk/source/host").attrib == {"name": "10.0.0.1", "port": "6789"}
    assert root.find("devices/disk/auth").get("username") == "vm"
    assert root.find("devices/interface/mac").get("address") == "52:54:00:00:01:00"
    assert root.find("devices/interface/source").get("bridge") == "vmbr100"
    assert root.find("devices/graphics").attrib["listen"] == "127.0.0.1"
    assert root.find("devices/serial") is not None


def test_volume_sources_split_volume_and_snapshot():
    assert build.volume_source({"source_volume": "base@golden"}) == ("base", "golden")
    assert build.volume_source({"source_volume": "base"}) == ("base", "")
    assert build.volume_source({"source_volume": None}) == ("", "")


def test_boot_settings_from_a_create_hook_are_checked_and_used():
    settings = build.boot_settings(
        {"kernel": "/images/vmlinuz", "initrd": "/images/initrd", "cmdline": "quiet"}
    )
    vm_data = {
        "name": "boot1",
        "system": {"vcpu_count": 1, "vram_mb": 64, "serial": True, "vnc": False},
        "volumes": [],
        "networks": [],
    }
    root = etree.fromstring(
        build.domain_xml(vm_data, domain_type="qemu", monitors=[], disk_auth=None, boot=settings).encode()
    )
    assert root.findtext("os/kernel") == "/images/vmlinuz"
    assert root.findtext("os/cmdline") == "quiet"
    for bad, why in [
        ({"kernel": "/k", "shell": "rm -rf /"}, "unknown settings shell"),
        ({"kernel": 5}, "not a short text"),
        ({"kernel": "/k\x00"}, "not a short text"),
        ({"cmdline": "quiet"}, "without a kernel"),
    ]:
        with pytest.raises(ClusterError, match=why):
            build.boot_settings(bad)
