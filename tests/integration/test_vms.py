"""The VM state machine end to end on real ZooKeeper: node daemons (in threads) with the VM
manager, each on its own private libvirt test driver.

The test driver cannot migrate, so live migrations fail here and the fallback paths
(shutdown and start on the target, or staying put with force_live) are what runs;
real live migration is proven by the lab tests.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.vm import actions as vm_actions
from pvc.cluster.vm import define as vms
from pvc.domain_xml import build as domain_xml
from pvc.domain_xml.policy import XmlPolicy
from pvc.state import paths
from pvc.state.states import DomainState, VMState
from pvc.state.vms import VmMeta, VmPlacement, create_vm, update_placement
from tests.helpers import wait_for

NODES = ["hv1", "hv2", "hv3"]


@pytest.fixture
def vm_cluster(cluster, test_driver_uri):
    """Three nodes with the VM manager; returns them by name."""
    started = {
        name: cluster(name, NODES, index=i, hypervisor_uri=test_driver_uri, shutdown_timeout=1.0)
        for i, name in enumerate(NODES, start=1)
    }
    first = started["hv1"].loop
    wait_for(
        lambda: all(n.daemon_state == "run" for n in first.cache.nodes()) and len(first.cache.nodes()) == 3
    )
    return started


def define(node, name: str, *, target: str = "hv1", **options) -> str:
    xml = domain_xml.build(domain_xml.DomainSpec(name=name, memory_mib=64))
    loop = node.loop
    uuid, _ = vms.define(loop.cluster, xml, node=target, policy=XmlPolicy(), **options)
    wait_for(lambda: loop.cache.vm(uuid) is not None)
    return uuid


def running_on(nodes, uuid: str) -> list[str]:
    """Nodes whose libvirt runs the VM."""
    return sorted(name for name, node in nodes.items() if uuid in node.loop.hypervisor.active())


def record(nodes, uuid):
    return nodes["hv1"].loop.cache.vm(uuid)


def settled(nodes, uuid: str, *, node: str, state: str, running: bool) -> bool:
    vm = record(nodes, uuid)
    where = running_on(nodes, uuid)
    expected = [node] if running else []
    return (
        vm is not None
        and vm.placement.node == node
        and vm.placement.state == state
        and vm.placement.running_on == (node if running else "")
        and where == expected
    )


def request(nodes, uuid: str, state: str, **kwargs) -> None:
    loop = nodes["hv1"].loop
    vm_actions.request_state(loop.cluster, uuid, state, **kwargs)


def test_start_shutdown_stop_restart_disable(vm_cluster):
    nodes = vm_cluster
    uuid = define(nodes["hv1"], "web1", target="hv2")
    assert settled(nodes, uuid, node="hv2", state="stop", running=False)

    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))

    request(nodes, uuid, "shutdown")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="stop", running=False))

    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))
    request(nodes, uuid, "restart")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))

    request(nodes, uuid, "stop")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="stop", running=False))

    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))
    request(nodes, uuid, "disable", force=True)
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="disable", running=False))


def test_only_the_assigned_node_starts_a_vm(vm_cluster):
    nodes = vm_cluster
    uuids = [define(nodes["hv1"], f"vm{i}", target=f"hv{i}") for i in (1, 2, 3)]
    for uuid in uuids:
        request(nodes, uuid, "start")
    for i, uuid in enumerate(uuids, start=1):
        wait_for(lambda uuid=uuid, i=i: settled(nodes, uuid, node=f"hv{i}", state="start", running=True))


def test_migrate_falls_back_to_shutdown_and_start_then_unmigrate_and_move(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    uuid = define(nodes["hv1"], "db1")
    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv1", state="start", running=True))

    message = vm_actions.request_node(loop.cluster, uuid, "migrate", node="hv3")
    assert message == "Migrating VM 'db1' to node 'hv3'"
    wait_for(lambda: settled(nodes, uuid, node="hv3", state="start", running=True))
    assert record(nodes, uuid).placement.last_node == "hv1"

    with pytest.raises(ClusterError, match="already been migrated"):
        vm_actions.request_node(loop.cluster, uuid, "migrate", node="hv2")

    vm_actions.request_node(loop.cluster, uuid, "unmigrate")
    wait_for(lambda: settled(nodes, uuid, node="hv1", state="start", running=True))
    assert record(nodes, uuid).placement.last_node == ""

    vm_actions.request_node(loop.cluster, uuid, "move", node="hv2")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))
    assert record(nodes, uuid).placement.last_node == ""


def test_force_live_migration_that_fails_leaves_the_vm_running_where_it_was(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    uuid = define(nodes["hv1"], "live1")
    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv1", state="start", running=True))
    vm_actions.request_node(loop.cluster, uuid, "migrate", node="hv2", force_live=True)
    wait_for(lambda: settled(nodes, uuid, node="hv1", state="start", running=True))
    assert record(nodes, uuid).placement.last_node == ""


def test_migration_method_live_never_shuts_the_vm_down(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    uuid = define(nodes["hv1"], "livecfg", migration_method="live")
    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv1", state="start", running=True))
    vm_actions.request_node(loop.cluster, uuid, "move", node="hv3")
    wait_for(lambda: settled(nodes, uuid, node="hv1", state="start", running=True))


def test_a_vm_whose_qemu_dies_is_restarted_and_counted(vm_cluster):
    nodes = vm_cluster
    uuid = define(nodes["hv1"], "crashy", target="hv2")
    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))
    nodes["hv2"].loop.hypervisor.destroy(uuid)  # behind the manager's back
    wait_for(lambda: record(nodes, uuid).placement.restarts == 1)
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))


def test_start_failure_marks_the_vm_failed_with_a_reason_and_a_fault(vm_cluster):
    nodes = vm_cluster
    uuid = define(nodes["hv1"], "clash", target="hv3")
    # A different domain of the same name already runs there: libvirt refuses the start.
    squatter = domain_xml.build(domain_xml.DomainSpec(name="clash", memory_mib=32))
    nodes["hv3"].loop.hypervisor.create(squatter)
    request(nodes, uuid, "start")
    wait_for(lambda: record(nodes, uuid).placement.state == VMState.FAIL)
    vm = record(nodes, uuid)
    assert "hv3" in vm.placement.failed_reason and "clash" in vm.placement.failed_reason
    assert vm.placement.running_on == ""
    cache = nodes["hv1"].loop.cache
    wait_for(
        lambda: any(
            "VM clash failed" in (cache.data(paths.fault(f)) or b"").decode()
            for f in cache.children(paths.FAULTS)
        )
    )


def test_a_running_domain_with_a_record_is_adopted(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    uuid = define(nodes["hv1"], "orphan", target="hv1")
    # As after a daemon restart: libvirt runs it and its record says start, but not where.
    loop.hypervisor.create(loop.cache.vm(uuid).xml)
    update_placement(loop.store, uuid, lambda p: replace(p, state=VMState.START))
    wait_for(lambda: settled(nodes, uuid, node="hv1", state="start", running=True))
    assert record(nodes, uuid).placement.restarts == 0


def test_flush_moves_every_vm_away_one_at_a_time_and_ready_brings_them_back(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    uuids = [define(nodes["hv1"], f"f{i}", target="hv1") for i in range(3)]
    stopped = define(nodes["hv1"], "fstopped", target="hv1")
    disabled = define(nodes["hv1"], "fdisabled", target="hv1")
    request(nodes, disabled, "disable")
    for uuid in uuids:
        request(nodes, uuid, "start")
    for uuid in uuids:
        wait_for(lambda uuid=uuid: settled(nodes, uuid, node="hv1", state="start", running=True))

    loop.store.set(paths.node_domain_state("hv1"), DomainState.FLUSH.value)
    wait_for(lambda: loop.cache.text(paths.node_domain_state("hv1")) == DomainState.FLUSHED, timeout=30)
    for uuid in uuids:
        vm = record(nodes, uuid)
        assert vm.placement.node in ("hv2", "hv3") and vm.placement.last_node == "hv1"
        assert running_on(nodes, uuid) == [vm.placement.node] and vm.placement.state == "start"
    assert record(nodes, stopped).placement.node != "hv1" and record(nodes, stopped).placement.state == "stop"
    assert record(nodes, disabled).placement.node == "hv1"
    # The selector spreads them by free memory: both other nodes got some.
    assert {record(nodes, uuid).placement.node for uuid in uuids} == {"hv2", "hv3"}

    loop.store.set(paths.node_domain_state("hv1"), DomainState.UNFLUSH.value)
    wait_for(lambda: loop.cache.text(paths.node_domain_state("hv1")) == DomainState.READY, timeout=30)
    for uuid in uuids:
        assert settled(nodes, uuid, node="hv1", state="start", running=True)
        assert record(nodes, uuid).placement.last_node == ""
    assert record(nodes, stopped).placement.node == "hv1"


def _flush_and_ready(loop, name: str, check_flushed) -> None:
    loop.store.set(paths.node_domain_state(name), DomainState.FLUSH.value)
    wait_for(lambda: loop.cache.text(paths.node_domain_state(name)) == DomainState.FLUSHED, timeout=30)
    check_flushed()
    loop.store.set(paths.node_domain_state(name), DomainState.UNFLUSH.value)
    wait_for(lambda: loop.cache.text(paths.node_domain_state(name)) == DomainState.READY, timeout=30)


@pytest.mark.parametrize(
    "options",
    [{"limit": "hv1"}, {"migration_method": "live"}],
    ids=["limited-to-its-node", "live-only-migration-fails"],
)
def test_a_vm_that_cannot_leave_a_flushed_node_stops_with_autostart_and_starts_at_ready(vm_cluster, options):
    """Its node limit leaves no other node, or (the test driver cannot live-migrate) its
    live-only migration fails: the flush shuts it down with node_autostart set rather than
    stopping it for good, and ready starts it there again, clearing the flag."""
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    pinned = define(nodes["hv1"], "pinned", target="hv1", **options)
    mobile = define(nodes["hv1"], "mobile", target="hv1")
    for uuid in (pinned, mobile):
        request(nodes, uuid, "start")
        wait_for(lambda uuid=uuid: settled(nodes, uuid, node="hv1", state="start", running=True))
    assert not record(nodes, pinned).meta.node_autostart

    def flushed() -> None:
        assert settled(nodes, pinned, node="hv1", state="stop", running=False)
        assert record(nodes, pinned).meta.node_autostart
        assert record(nodes, mobile).placement.node != "hv1" and running_on(nodes, mobile) != ["hv1"]
        assert not record(nodes, mobile).meta.node_autostart

    _flush_and_ready(loop, "hv1", flushed)
    wait_for(lambda: settled(nodes, pinned, node="hv1", state="start", running=True))
    wait_for(lambda: settled(nodes, mobile, node="hv1", state="start", running=True))
    assert not record(nodes, pinned).meta.node_autostart  # used once


def test_ready_leaves_stopped_vms_without_autostart_alone(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    stopped = define(nodes["hv1"], "idle", target="hv1", limit="hv1")
    _flush_and_ready(loop, "hv1", lambda: None)
    assert settled(nodes, stopped, node="hv1", state="stop", running=False)
    assert not record(nodes, stopped).meta.node_autostart


def test_a_flushed_node_gets_no_new_vms(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    loop.store.set(paths.node_domain_state("hv2"), DomainState.FLUSH.value)
    wait_for(lambda: loop.cache.text(paths.node_domain_state("hv2")) == DomainState.FLUSHED)
    xml = domain_xml.build(domain_xml.DomainSpec(name="placed", memory_mib=64))
    for i in range(4):
        xml_i = xml.replace("<name>placed</name>", f"<name>placed{i}</name>")
        xml_i = xml_i.replace(f"<uuid>{domain_xml.parse(xml)[1].uuid}</uuid>", "")
        uuid, _ = vms.define(loop.cluster, xml_i, policy=XmlPolicy())
        wait_for(lambda uuid=uuid: loop.cache.vm(uuid) is not None)
        assert loop.cache.vm(uuid).placement.node in ("hv1", "hv3")
    with pytest.raises(ClusterError, match="cannot take VMs"):
        uuid = loop.cache.vm_uuid_by_name("placed0")
        vm_actions.request_node(loop.cluster, uuid, "migrate", node="hv2")


def test_removing_a_running_vm_stops_it_first(vm_cluster):
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    uuid = define(nodes["hv1"], "gone", target="hv2")
    request(nodes, uuid, "start")
    wait_for(lambda: settled(nodes, uuid, node="hv2", state="start", running=True))
    message = vm_actions.remove(loop.cluster, uuid)
    assert "Removed VM 'gone'" in message
    assert running_on(nodes, uuid) == []
    assert not loop.store.exists(paths.domain(uuid)) and not loop.store.exists(paths.domain_name("gone"))


def test_the_node_refuses_a_definition_that_bypassed_the_api(vm_cluster):
    """A definition written straight into the cluster state (an old backup, a bug) is checked
    by the node before libvirt sees it: the VM fails with the reason and never runs."""
    nodes = vm_cluster
    loop = nodes["hv1"].loop
    xml = domain_xml.build(domain_xml.DomainSpec(name="sneaky", memory_mib=64)).replace(
        '<serial type="pty">', "<serial type='file'><source path='/etc/shadow'/>"
    )
    uuid = domain_xml.parse(xml)[1].uuid
    meta = VmMeta(name="sneaky", uuid=uuid, vcpus=1, memory_mib=64)
    loop.cluster.settle(create_vm(loop.store, meta, VmPlacement(state=VMState.STOP, node="hv2"), xml))
    request(nodes, uuid, "start")
    wait_for(lambda: loop.cache.vm(uuid).placement.state == VMState.FAIL)
    placement = loop.cache.vm(uuid).placement
    assert "not allowed" in placement.failed_reason and "'pty'" in placement.failed_reason
    assert not placement.running_on
    assert uuid not in nodes["hv2"].loop.hypervisor.active()
