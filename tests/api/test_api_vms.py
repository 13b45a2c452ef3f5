"""The /vm endpoints against real ZooKeeper and node daemons on private libvirt test drivers."""

from __future__ import annotations

import json

import pytest

from pvc.domain_xml import build as domain_xml
from pvc.state import paths
from pvc.state.states import VMState
from pvc.state.vms import update_placement
from tests.api.conftest import start_hypervisor_nodes
from tests.helpers import by_label, metric_samples, reference_file, wait_for

PREFIX = "/api/v1"
NODES = ["hv1", "hv2", "hv3"]


@pytest.fixture
def vm_api(api, cluster, test_driver_uri):
    client, context = api
    start_hypervisor_nodes(cluster, context, NODES, test_driver_uri)
    return client, context


def xml_for(name: str, *, vcpus: int = 1, memory: int = 64, uuid: str = "") -> str:
    return domain_xml.build(domain_xml.DomainSpec(name=name, vcpus=vcpus, memory_mib=memory, uuid=uuid))


def get(client, path, **params):
    return client.get(PREFIX + path, query_string=params)


def post(client, path, **data):
    return client.post(PREFIX + path, data=data)


def define(client, name: str, **options) -> dict:
    response = post(client, "/vm", xml=xml_for(name), **options)
    assert response.status_code == 200, response.json
    return get(client, f"/vm/{name}").json[0]


def test_define_get_and_list_in_the_v1_shape(vm_api):
    client, _ = vm_api
    vm = define(client, "web1", node="hv2", user_tags="blue", protected_tags="prod")
    assert vm["name"] == "web1" and vm["node"] == "hv2" and vm["state"] == "stop"
    assert vm["migrated"] == "no" and vm["vcpu"] == 1 and vm["memory"] == 64
    assert {t["name"]: t["protected"] for t in vm["tags"]} == {"blue": False, "prod": True}
    shape = json.loads(reference_file("pvc-api-v1.json").read_text())["definitions"]["vm"]
    assert set(vm) == set(shape)
    by_uuid = get(client, f"/vm/{vm['uuid']}").json
    assert by_uuid[0]["name"] == "web1"
    assert [v["name"] for v in get(client, "/vm").json] == ["web1"]
    assert get(client, "/vm/nope").status_code == 404


def test_bad_definitions_are_refused_and_nothing_is_half_defined(vm_api):
    client, context = vm_api
    define(client, "taken")
    before = context.cluster.store.children(paths.DOMAINS)
    cases = [
        (xml_for("taken"), {}, "already exists"),
        ("<domain type='qemu'><name>x</name>", {}, "not well-formed"),
        ('<!DOCTYPE d [<!ENTITY e "x">]><domain/>', {}, "DOCTYPE"),
        (xml_for("big", vcpus=1).replace("<vcpu>1</vcpu>", "<vcpu>999</vcpu>"), {}, "<vcpu>"),
        (xml_for("huge").replace(">64<", ">99999999<"), {}, "<memory>"),
        (xml_for("elsewhere"), {"node": "hv9"}, "does not exist"),
        (xml_for("limited"), {"limit": "hv1,hv9"}, "node limit"),
        (xml_for("outside"), {"node": "hv1", "limit": "hv2"}, "not in the VM's node limit"),
        (xml_for("badtag"), {"user_tags": "bad tag"}, "invalid"),
    ]
    for xml, options, words in cases:
        response = post(client, "/vm", xml=xml, **options)
        assert response.status_code == 400, (words, response.json)
        assert words in response.json["message"], (words, response.json)
    response = post(
        client,
        "/vm",
        xml=xml_for("qemu-cmd").replace("<devices>", "<devices><hostdev mode='subsystem' type='pci'/>"),
    )
    assert response.status_code == 400 and "host device" in response.json["message"]
    assert post(client, "/vm", xml=xml_for("x"), migration_max_downtime="0").status_code == 400
    assert post(client, "/vm", xml=xml_for("x"), selector="fastest").status_code == 400
    assert context.cluster.store.children(paths.DOMAINS) == before


def test_state_changes_with_wait_and_their_errors(vm_api):
    client, context = vm_api
    vm = define(client, "app1", node="hv3")
    assert post(client, "/vm/app1/state", state="restart").status_code == 400
    assert post(client, "/vm/app1/state", state="shutdown").status_code == 400
    response = post(client, "/vm/app1/state", state="start", wait="true")
    assert response.status_code == 200, response.json
    assert get(client, "/vm/app1/state").json == {"name": "app1", "state": "start"}
    assert context.cluster.cache.vm(vm["uuid"]).placement.running_on == "hv3"
    assert post(client, "/vm/app1/state", state="restart", wait="true").status_code == 200
    assert post(client, "/vm/app1/state", state="shutdown", wait="true").status_code == 200
    assert context.cluster.cache.vm(vm["uuid"]).placement.running_on == ""
    assert get(client, "/vm/app1/state").json["state"] == "stop"
    assert post(client, "/vm/app1/state", state="sleep").status_code == 400

    mirror = {"state": VMState.MIRROR}
    update_placement(context.cluster.store, vm["uuid"], lambda p: p.__class__(**{**vars(p), **mirror}))
    wait_for(lambda: get(client, "/vm/app1/state").json["state"] == "mirror")
    response = post(client, "/vm/app1/state", state="start")
    assert response.status_code == 400 and "mirror" in response.json["message"]

    importing = {"state": VMState.IMPORT}  # its volumes are being written: nothing may start or move it
    update_placement(context.cluster.store, vm["uuid"], lambda p: p.__class__(**{**vars(p), **importing}))
    wait_for(lambda: get(client, "/vm/app1/state").json["state"] == "import")
    for state in ("start", "stop", "disable"):
        response = post(client, "/vm/app1/state", state=state)
        assert response.status_code == 400 and "being imported" in response.json["message"], state
    moved = post(client, "/vm/app1/node", action="migrate", node="hv2")
    assert moved.status_code == 400 and "being imported" in moved.json["message"]


def test_migrate_unmigrate_move_with_wait_and_their_errors(vm_api):
    client, _ = vm_api
    define(client, "mover", node="hv1")
    post(client, "/vm/mover/state", state="start", wait="true")
    for params, words in (
        ({"action": "migrate", "node": "hv1"}, "already on node"),
        ({"action": "migrate", "node": "hv7"}, "does not exist"),
        ({"action": "unmigrate"}, "has not been migrated"),
        ({"action": "teleport"}, "action"),
    ):
        response = post(client, "/vm/mover/node", **params)
        assert response.status_code == 400, (params, response.json)
        assert words in json.dumps(response.json), (params, response.json)

    response = post(client, "/vm/mover/node", action="migrate", node="hv2", wait="true")
    assert response.status_code == 200, response.json
    vm = get(client, "/vm/mover").json[0]
    assert (vm["node"], vm["last_node"], vm["migrated"], vm["state"]) == ("hv2", "hv1", "from hv1", "start")
    assert get(client, "/vm/mover/node").json == {"name": "mover", "node": "hv2", "last_node": "hv1"}

    assert post(client, "/vm/mover/node", action="unmigrate", wait="true").status_code == 200
    assert get(client, "/vm/mover/node").json == {"name": "mover", "node": "hv1", "last_node": ""}

    assert post(client, "/vm/mover/node", action="move", wait="true").status_code == 200
    moved = get(client, "/vm/mover/node").json
    assert moved["node"] in ("hv2", "hv3") and moved["last_node"] == ""


def test_meta_tags_rename_modify_console_and_remove(vm_api):
    client, context = vm_api
    vm = define(client, "meta1", node="hv1")
    assert (
        post(client, "/vm/meta1/meta", limit="hv1,hv2", selector="vcpus", migration_method="live").status_code
        == 200
    )
    meta = get(client, "/vm/meta1/meta").json
    assert meta["node_limit"] == ["hv1", "hv2"] and meta["node_selector"] == "vcpus"
    assert meta["migration_method"] == "live" and meta["migration_max_downtime"] == 300
    assert post(client, "/vm/meta1/meta", migration_max_downtime="-5").status_code == 400

    assert post(client, "/vm/meta1/tags", action="add", tag="keep", protected="true").status_code == 200
    refused = post(client, "/vm/meta1/tags", action="remove", tag="keep")
    assert refused.status_code == 400 and "protected" in refused.json["message"]
    assert post(client, "/vm/meta1/tags", action="remove", tag="keep", protected="true").status_code == 200
    assert get(client, "/vm/meta1/tags").json == {"name": "meta1", "tags": []}

    changed = xml_for("meta1", vcpus=2, memory=96, uuid=vm["uuid"])
    assert client.put(f"{PREFIX}/vm/meta1", data={"xml": changed}).status_code == 200
    assert (get(client, "/vm/meta1").json[0]["vcpu"], get(client, "/vm/meta1").json[0]["memory"]) == (2, 96)
    renamed_xml = xml_for("other", uuid=vm["uuid"])
    response = client.put(f"{PREFIX}/vm/meta1", data={"xml": renamed_xml})
    assert response.status_code == 400 and "rename" in response.json["message"]

    post(client, "/vm/meta1/state", state="start", wait="true")
    refused = post(client, "/vm/meta1/rename", new_name="meta2")
    assert refused.status_code == 400 and "stopped" in refused.json["message"]
    post(client, "/vm/meta1/state", state="stop", wait="true")
    assert post(client, "/vm/meta1/rename", new_name="meta2").status_code == 200
    assert get(client, "/vm/meta1").status_code == 404
    assert "<name>meta2</name>" in get(client, "/vm/meta2").json[0]["xml"]

    context.cluster.store.set(paths.domain_console(vm["uuid"]), "one\ntwo\nthree")
    wait_for(lambda: get(client, "/vm/meta2/console").json["data"].endswith("three"))
    assert get(client, "/vm/meta2/console", lines=2).json == {"name": "meta2", "data": "two\nthree"}

    post(client, "/vm/meta2/state", state="start", wait="true")
    response = client.delete(f"{PREFIX}/vm/meta2")
    assert response.status_code == 200, response.json
    assert get(client, "/vm/meta2").status_code == 404
    assert not context.cluster.store.exists(paths.domain(vm["uuid"]))


def test_list_filters(vm_api):
    client, _ = vm_api
    # the limit is matched against UUIDs too: a prefix that is not a hex digit cannot match one
    define(client, "web1", node="hv1", user_tags="x")
    define(client, "web2", node="hv2")
    define(client, "sql1", node="hv2", user_tags="x")
    post(client, "/vm/web2/state", state="start", wait="true")

    def names(**params):
        return [vm["name"] for vm in get(client, "/vm", **params).json]

    assert names() == ["sql1", "web1", "web2"]
    assert names(limit="^web") == ["web1", "web2"]
    assert names(node="hv2") == ["sql1", "web2"]
    assert names(node="hv2", negate="true") == ["web1"]
    assert names(state="start") == ["web2"]
    assert names(tag="x") == ["sql1", "web1"]
    assert names(tag="x", negate="true") == ["web2"]


def test_node_flush_with_wait_moves_vms_and_ready_returns_them(vm_api):
    client, _ = vm_api
    for i in range(3):
        define(client, f"fl{i}", node="hv1")
        post(client, f"/vm/fl{i}/state", state="start", wait="true")
    response = post(client, "/node/hv1/domain-state", state="flush", wait="true")
    assert response.status_code == 200, response.json
    assert get(client, "/node/hv1/domain-state").json["domain_state"] == "flushed"
    placed = {vm["name"]: (vm["node"], vm["last_node"]) for vm in get(client, "/vm").json}
    assert all(node != "hv1" and last == "hv1" for node, last in placed.values()), placed
    response = post(client, "/node/hv1/domain-state", state="ready", wait="true")
    assert response.status_code == 200, response.json
    assert {vm["node"] for vm in get(client, "/vm").json} == {"hv1"}


DISK = (
    "<disk type='network' device='disk'><source protocol='rbd' name='vms/extra'/>"
    "<target dev='vdb' bus='virtio'/></disk>"
)


def test_device_hotplug_is_a_task_on_the_vms_node_and_bad_requests_are_refused(vm_api):
    client, context = vm_api
    define(client, "plug1", node="hv2")
    url = "/vm/plug1/device"
    response = post(client, url, xml=DISK)
    assert response.status_code == 400 and "not running" in response.json["message"]
    assert client.delete(PREFIX + "/vm/nope/device", data={"xml": DISK}).status_code == 404
    assert post(client, "/vm/plug1/state", state="start", wait="true").status_code == 200
    for xml, words in [
        ("", "empty"),
        ("<disk", "not well-formed"),
        ("<hostdev mode='subsystem'/>", "not allowed"),
        ("<controller type='usb'/>", "<disk> or <interface>"),
        ("<disk type='file'><source file='/x'/></disk>", "target"),
        ('<!DOCTYPE d [<!ENTITY e "x">]><disk/>', "DOCTYPE"),
    ]:
        response = post(client, url, xml=xml)
        assert response.status_code == 400, (xml, response.json)
        assert words in response.json["message"], (words, response.json)
    assert context.cluster.store.children(paths.TASKS) == []

    accepted = post(client, url, xml=DISK)
    assert accepted.status_code == 202, accepted.json
    assert accepted.json["task_name"] == "vm.device_attach" and accepted.json["run_on"] == "hv2"
    task_id = accepted.json["task_id"]
    # The test driver cannot hot-plug: the task runs on hv2 and fails with libvirt's reason.
    wait_for(lambda: get(client, f"/tasks/{task_id}").json["state"] == "FAILURE", timeout=20)
    status = get(client, f"/tasks/{task_id}").json["status"]
    assert "not supported" in status and "vdb" in status, status
    detach = client.delete(PREFIX + url, data={"xml": DISK})
    assert detach.status_code == 202 and detach.json["task_name"] == "vm.device_detach"
    wait_for(lambda: get(client, f"/tasks/{detach.json['task_id']}").json["state"] == "FAILURE", timeout=20)
    assert "no such device" in get(client, f"/tasks/{detach.json['task_id']}").json["status"]


def test_status_counts_vms_by_state_and_disk_is_not_known_without_storage(vm_api):
    client, _ = vm_api
    for name in ("count1", "count2", "count3"):
        define(client, name)
    for name in ("count1", "count2"):
        assert post(client, f"/vm/{name}/state", state="start", wait="true").status_code == 200
    listed = [vm["state"] for vm in get(client, "/vm").json]
    status = get(client, "/status").json
    assert (
        status["vms"]
        == {"total": 3, "start": 2, "stop": 1}
        == {
            "total": len(listed),
            **{state: listed.count(state) for state in set(listed)},
        }
    )
    assert status["osds"] == {"total": 0} and status["pools"] == status["volumes"] == 0
    assert set(status["resources"]["disk"].values()) == {"N/A"}  # no Ceph here: not known, not 0
    # detail.vm is the full VM list, as GET /vm serves it; detail.node the node list
    assert status["detail"]["vm"] == get(client, "/vm").json
    assert [vm["name"] for vm in status["detail"]["vm"]] == ["count1", "count2", "count3"]
    assert [n["name"] for n in status["detail"]["node"]] == [n["name"] for n in get(client, "/node").json]
    # /metrics counts the same, and has no disk sample while Ceph's capacity is not known
    metrics = metric_samples(get(client, "/metrics/resource").get_data(as_text=True))
    assert by_label(metrics["pvc_vms"], "state") == {"start": 2, "stop": 1}
    assert metrics["pvc_pools"] == metrics["pvc_volumes"] == {(): 0.0}
    assert "pvc_osds" not in metrics and "pvc_cluster_disk_bytes" not in metrics
