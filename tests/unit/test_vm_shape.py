"""A VM's API shape (PVC v1 "vm" definition) from its record, XML and live statistics."""

import json
from dataclasses import replace

import pytest
from lxml import etree

from pvc.cluster.vm.shape import (
    DISK_COUNTERS,
    MEMORY_STATS,
    NIC_COUNTERS,
    VCPU_STATS,
    XmlFacts,
    stats_view,
    to_api,
    xml_facts,
)
from pvc.domain_xml.parse import pretty
from pvc.state.states import MigrationMethod, Selector, VMState
from pvc.state.vms import VmMeta, VmPlacement, VmRecord
from tests.helpers import reference_file

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"

XML = f"""<domain type='kvm'>
  <name>web1</name>
  <uuid>{UUID}</uuid>
  <memory unit='MiB'>2048</memory>
  <vcpu>4</vcpu>
  <os><type arch='x86_64' machine='pc-q35-8.2'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/><!-- a comment is not a feature --><vmport state='off'/></features>
  <cpu mode='host-passthrough'><topology sockets='1' cores='2' threads='2'/></cpu>
  <devices>
    <emulator>
      /usr/bin/qemu-system-x86_64
    </emulator>
    <controller type='usb' index='0' model='none'/>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='pci' index='0'/>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='writeback'/>
      <source protocol='rbd' name='vms/web1_disk0'><host name='10.0.0.1' port='6789'/></source>
      <target dev='sda' bus='scsi'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/var/lib/pvc/web1-scratch.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:aa:bb:01'/><source bridge='vmbr100'/><model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:aa:bb:02'/><source bridge='vmbr2001'/><model type='e1000'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:aa:bb:03'/><source bridge='virbr0'/><model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <graphics type='vnc' listen='0.0.0.0' port='5901'/>
  </devices>
</domain>
"""


def record(xml: str = XML, **placement) -> VmRecord:
    meta = VmMeta(
        name="web1",
        uuid=UUID,
        vcpus=4,
        memory_mib=2048,
        node_limit=["hv1", "hv2"],
        node_selector=Selector.VCPUS,
        node_autostart=True,
        migration_method=MigrationMethod.LIVE,
        migration_max_downtime=500,
        tags=[{"name": "prod", "type": "user", "protected": True}],
        description="the web server",
        profile="small",
    )
    fields = {"state": VMState.START, "node": "hv2", "running_on": "hv2"} | placement
    return VmRecord(uuid=UUID, meta=meta, placement=VmPlacement(**fields), xml=xml)


STATS = {
    "memory": {key: 1000 + index for index, key in enumerate(MEMORY_STATS)},
    "vcpu": {"cpu_time": 9_000_000_000, "user_time": 6_000_000_000, "system_time": 3_000_000_000},
    "nics": {
        "0": {key: 100 + index for index, key in enumerate(NIC_COUNTERS)},
        "1": {"rd_bytes": 5.0, "wr_bytes": "7"},  # numbers may arrive as floats or strings
        "7": {"rd_bytes": 999},  # no such NIC
    },
    "disks": {
        "vdb": {"rd_req": 1, "rd_bytes": 2, "wr_req": 3, "wr_bytes": 4},
        "sda": {"rd_req": 10, "rd_bytes": 20, "wr_req": 30, "wr_bytes": 40},
        "vdz": {"rd_req": 999},  # no such disk
    },
}


def vm_definition() -> dict:
    return json.loads(reference_file("pvc-api-v1.json").read_text())["definitions"]["vm"]


# --- the shape -------------------------------------------------------------------------------


@pytest.mark.parametrize("stats", [STATS, None, {}], ids=["stats", "no-stats", "empty-stats"])
def test_top_level_keys_match_the_reference(stats):
    assert set(to_api(record(), stats)) == set(vm_definition())


@pytest.mark.parametrize("field", ["networks", "disks", "controllers", "tags"])
def test_list_item_keys_match_the_reference(field):
    definition = vm_definition()[field][0]
    items = to_api(record(), STATS)[field]
    assert items
    for item in items:
        assert set(item) == set(definition), field


@pytest.mark.parametrize("field", ["vnc", "memory_stats", "vcpu_stats"])
def test_nested_keys_match_the_reference(field):
    assert set(to_api(record(), STATS)[field]) == set(vm_definition()[field])


def _has_type(value, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)  # StrEnum members are strings too
    if kind == "integer" and value == "N/A":
        return True  # a figure nothing reported (v1 shows unknowns as N/A)
    return type(value) is {"integer": int, "boolean": bool}[kind]  # bool is no integer here


def test_value_types_match_the_reference():
    view = to_api(record(), STATS)
    for key, kind in vm_definition().items():
        if isinstance(kind, str):
            assert _has_type(view[key], kind), key
        elif isinstance(kind, dict):
            for inner, inner_kind in kind.items():
                assert _has_type(view[key][inner], inner_kind), (key, inner)
        else:
            assert isinstance(view[key], list), key
            for item in view[key]:
                if isinstance(kind[0], dict):
                    for inner, inner_kind in kind[0].items():
                        if isinstance(inner_kind, str):
                            assert _has_type(item[inner], inner_kind), (key, inner)
                else:
                    assert _has_type(item, kind[0]), key


def test_module_counter_names_match_the_reference():
    definition = vm_definition()
    assert set(MEMORY_STATS) == set(definition["memory_stats"])
    assert set(VCPU_STATS) == set(definition["vcpu_stats"])
    assert set(NIC_COUNTERS) | {"type", "mac", "source", "vni", "model"} == set(definition["networks"][0])
    assert set(DISK_COUNTERS) | {"type", "name", "dev", "bus"} == set(definition["disks"][0])


# --- values from the record --------------------------------------------------------------------


def test_record_fields():
    view = to_api(record(last_node="hv1", failed_reason="", state=VMState.MIGRATE))
    assert {key: view[key] for key in ("name", "uuid", "state", "node", "last_node", "failed_reason")} == {
        "name": "web1",
        "uuid": UUID,
        "state": "migrate",
        "node": "hv2",
        "last_node": "hv1",
        "failed_reason": "",
    }
    assert view["node_limit"] == ["hv1", "hv2"]
    assert view["node_selector"] == "vcpus"
    assert view["node_autostart"] is True
    assert view["migration_method"] == "live"
    assert view["migration_max_downtime"] == 500
    assert view["tags"] == [{"name": "prod", "type": "user", "protected": True}]
    assert view["snapshots"] == []
    assert view["description"] == "the web server"
    assert view["profile"] == "small"
    assert view["memory"] == 2048
    assert view["vcpu"] == 4


def test_failed_reason_is_shown():
    view = to_api(record(state=VMState.FAIL, failed_reason="start on node hv2 failed: boom"))
    assert (view["state"], view["failed_reason"]) == ("fail", "start on node hv2 failed: boom")


@pytest.mark.parametrize(("last_node", "migrated"), [("", "no"), ("hv1", "from hv1"), ("hv3", "from hv3")])
def test_migrated(last_node, migrated):
    view = to_api(record(last_node=last_node))
    assert view["migrated"] == migrated
    assert view["last_node"] == last_node


def test_lists_are_copies_of_the_record():
    rec = record()
    view = to_api(rec)
    view["node_limit"].append("hv9")
    view["tags"].clear()
    assert rec.meta.node_limit == ["hv1", "hv2"]
    assert rec.meta.tags == [{"name": "prod", "type": "user", "protected": True}]


# --- values from the XML ---------------------------------------------------------------------


def test_xml_facts():
    view = to_api(record())
    assert view["type"] == "kvm"
    assert view["arch"] == "x86_64"
    assert view["machine"] == "pc-q35-8.2"
    assert view["console"] == "pty"
    assert view["emulator"] == "/usr/bin/qemu-system-x86_64"
    assert view["features"] == ["acpi", "apic", "vmport"]
    assert view["vcpu_topology"] == "1/2/2"
    assert view["vnc"] == {"listen": "0.0.0.0", "port": "5901"}
    assert view["controllers"] == [
        {"type": "usb", "model": "none"},
        {"type": "scsi", "model": "virtio-scsi"},
        {"type": "pci", "model": ""},
    ]


def test_networks_bridge_to_vni():
    zeros = dict.fromkeys(NIC_COUNTERS, "N/A")  # not running: no counters known
    assert to_api(record())["networks"] == [
        {"type": "bridge", "mac": "52:54:00:aa:bb:01", "source": "vmbr100", "vni": 100, "model": "virtio"}
        | zeros,
        {"type": "bridge", "mac": "52:54:00:aa:bb:02", "source": "vmbr2001", "vni": 2001, "model": "e1000"}
        | zeros,
        {"type": "bridge", "mac": "52:54:00:aa:bb:03", "source": "virbr0", "vni": 0, "model": "virtio"}
        | zeros,
    ]


@pytest.mark.parametrize(
    ("bridge", "vni"),
    [("vmbr100", 100), ("br7", 7), ("vmbr0", 0), ("virbr0", 0), ("vmbr100x", 0), ("ovs-br1", 0), ("vmbr", 0)],
)
def test_vni_from_bridge_name(bridge, vni):
    xml = XML.replace("vmbr100", bridge)
    assert to_api(record(xml))["networks"][0]["vni"] == vni


def test_disks_file_and_rbd():
    zeros = dict.fromkeys(DISK_COUNTERS, "N/A")  # not running: no counters known
    assert to_api(record())["disks"] == [
        {"type": "network", "name": "vms/web1_disk0", "dev": "sda", "bus": "scsi"} | zeros,
        {"type": "file", "name": "/var/lib/pvc/web1-scratch.img", "dev": "vdb", "bus": "virtio"} | zeros,
    ]


def test_minimal_xml_gives_empty_facts():
    xml = "<domain type='qemu'><name>tiny</name><memory unit='MiB'>64</memory><vcpu>1</vcpu></domain>"
    view = to_api(record(xml))
    assert view["type"] == "qemu"
    assert (view["arch"], view["machine"], view["console"], view["emulator"]) == ("", "", "", "")
    assert view["features"] == []
    assert view["vcpu_topology"] == "N/A"  # no <cpu><topology>, as v1 shows it
    assert view["vnc"] == {"listen": "", "port": ""}
    assert (view["networks"], view["disks"], view["controllers"]) == ([], [], [])


def test_topology_missing_attributes_default_to_one():
    xml = XML.replace("<topology sockets='1' cores='2' threads='2'/>", "<topology sockets='2' cores='4'/>")
    assert to_api(record(xml))["vcpu_topology"] == "2/4/1"


def test_vnc_without_port_or_listen():
    xml = XML.replace("<graphics type='vnc' listen='0.0.0.0' port='5901'/>", "<graphics type='vnc'/>")
    assert to_api(record(xml))["vnc"] == {"listen": "", "port": ""}
    spice = XML.replace("type='vnc'", "type='spice'")
    assert to_api(record(spice))["vnc"] == {"listen": "", "port": ""}


def test_console_is_the_first_serial_type():
    xml = XML.replace("<serial type='pty'><target port='0'/></serial>", "")
    assert to_api(record(xml))["console"] == ""
    xml = XML.replace(
        "<serial type='pty'><target port='0'/></serial>",
        "<serial type='file'><source path='/var/log/pvc/web1.log'/><target port='0'/></serial>",
    )
    assert to_api(record(xml))["console"] == "file"


def test_invalid_xml_still_gives_the_whole_shape():
    broken = record("<domain type='kvm'><name>web1")  # not well-formed
    view = to_api(broken, STATS)
    assert set(view) == set(to_api(record(), STATS))
    assert view["xml"] == "<domain type='kvm'><name>web1"
    assert (view["networks"], view["disks"], view["features"], view["controllers"]) == ([], [], [], [])
    assert view["vnc"] == {"listen": "", "port": ""}
    assert view["type"] == ""
    assert view["memory_stats"] == {key: 1000 + index for index, key in enumerate(MEMORY_STATS)}
    # the record still speaks for itself
    assert (view["name"], view["memory"], view["vcpu"]) == ("web1", 2048, 4)


def test_rejected_xml_gives_empty_facts():
    rejected = XML.replace("type='kvm'", "type='xen'", 1)
    facts = xml_facts(rejected)
    assert facts == XmlFacts("", "", "", "", "", [], "", "", "", [], [], [], xml=pretty(rejected))


def test_xml_is_normalised():
    view = to_api(record())
    assert view["xml"] == pretty(XML)
    assert "a comment is not a feature" not in view["xml"]
    root = etree.fromstring(view["xml"].encode())
    assert root.findtext("name") == "web1"
    assert root.find("devices/interface/source").get("bridge") == "vmbr100"
    # normalising is stable
    assert pretty(view["xml"]) == view["xml"]
    compact = etree.tostring(etree.fromstring(XML.encode()), encoding="unicode")
    assert pretty(compact).splitlines()[0] == '<domain type="kvm">'


def test_xml_facts_are_not_shared_between_views():
    first = to_api(record())
    first["features"].append("hyperv")
    first["controllers"].append({"type": "ide", "model": ""})
    second = to_api(record())
    assert second["features"] == ["acpi", "apic", "vmport"]
    assert len(second["controllers"]) == 3


# --- statistics ------------------------------------------------------------------------------


def test_stats_land_in_the_right_fields():
    view = to_api(record(), STATS)
    assert view["memory_stats"] == {
        "actual": 1000,
        "swap_in": 1001,
        "swap_out": 1002,
        "major_fault": 1003,
        "minor_fault": 1004,
        "unused": 1005,
        "available": 1006,
        "usable": 1007,
        "last_update": 1008,
        "rss": 1009,
    }
    assert view["vcpu_stats"] == {
        "cpu_time": 9_000_000_000,
        "user_time": 6_000_000_000,
        "system_time": 3_000_000_000,
    }


def test_nic_stats_by_position():
    networks = to_api(record(), STATS)["networks"]
    assert [nic["source"] for nic in networks] == ["vmbr100", "vmbr2001", "virbr0"]
    assert {key: networks[0][key] for key in NIC_COUNTERS} == {
        "rd_bytes": 100,
        "rd_packets": 101,
        "rd_errors": 102,
        "rd_drops": 103,
        "wr_bytes": 104,
        "wr_packets": 105,
        "wr_errors": 106,
        "wr_drops": 107,
    }
    second = {key: networks[1][key] for key in NIC_COUNTERS}
    assert second == dict.fromkeys(NIC_COUNTERS, "N/A") | {"rd_bytes": 5, "wr_bytes": 7}
    assert type(second["rd_bytes"]) is int and type(second["wr_bytes"]) is int
    # libvirt reported nothing for the third NIC: its counters are unknown, not 0
    assert {key: networks[2][key] for key in NIC_COUNTERS} == dict.fromkeys(NIC_COUNTERS, "N/A")
    # the XML facts are kept next to the counters
    assert (networks[0]["mac"], networks[0]["vni"]) == ("52:54:00:aa:bb:01", 100)


def test_disk_stats_by_target_device():
    disks = to_api(record(), STATS)["disks"]
    assert [(d["dev"], d["rd_req"], d["rd_bytes"], d["wr_req"], d["wr_bytes"]) for d in disks] == [
        ("sda", 10, 20, 30, 40),
        ("vdb", 1, 2, 3, 4),
    ]
    assert disks[0]["name"] == "vms/web1_disk0"


def test_counters_libvirt_did_not_report_are_not_known():
    view = to_api(record(), {"memory": {"rss": 4096}, "vcpu": {"cpu_time": 5, "user_time": None}})
    assert view["memory_stats"] == dict.fromkeys(MEMORY_STATS, "N/A") | {"rss": 4096}
    assert view["vcpu_stats"] == {"cpu_time": 5, "user_time": "N/A", "system_time": "N/A"}
    assert all(nic[key] == "N/A" for nic in view["networks"] for key in NIC_COUNTERS)
    assert all(disk[key] == "N/A" for disk in view["disks"] for key in DISK_COUNTERS)
    # a reported 0 is a measurement and stays 0
    zero = to_api(record(), {"memory": {"swap_in": 0}, "disks": {"sda": {"rd_req": 0}}})
    assert zero["memory_stats"]["swap_in"] == 0 and zero["disks"][0]["rd_req"] == 0


def test_running_vm_without_any_figure_shows_every_counter_unknown():
    view = to_api(record(), {})
    assert view["memory_stats"] == dict.fromkeys(MEMORY_STATS, "N/A")
    assert view["vcpu_stats"] == dict.fromkeys(VCPU_STATS, "N/A")


def test_a_vm_that_is_not_running_has_no_figures():
    """As PVC v1: empty memory and vCPU statistics; NICs and disks keep their XML facts and
    every counter key (v1 always lists them) with the value N/A."""
    view = to_api(record(state=VMState.STOP, running_on=""), None)
    assert view["memory_stats"] == {} and view["vcpu_stats"] == {}
    assert [nic["source"] for nic in view["networks"]] == ["vmbr100", "vmbr2001", "virbr0"]
    assert view["networks"][0]["mac"] == "52:54:00:aa:bb:01"
    assert all(nic[key] == "N/A" for nic in view["networks"] for key in NIC_COUNTERS)
    assert [disk["dev"] for disk in view["disks"]] == ["sda", "vdb"]
    assert all(disk[key] == "N/A" for disk in view["disks"] for key in DISK_COUNTERS)
    assert set(view["networks"][0]) == set(to_api(record(), STATS)["networks"][0])


def test_stats_view_does_not_change_the_facts():
    facts = xml_facts(XML)
    before = json.dumps([facts.networks, facts.disks])
    stats_view(facts, STATS)
    assert json.dumps([facts.networks, facts.disks]) == before


def test_to_api_is_json_serialisable():
    view = to_api(replace(record(), xml=XML), STATS)
    assert json.loads(json.dumps(view)) == view
