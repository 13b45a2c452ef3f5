"""The VM manager's two waits, on a real ZooKeeper and a libvirt test driver, its clock
under the test's control:

* a VM whose QEMU keeps dying is started again after 1, 2, 4, 8 and 16 s, and marked
  failed at the sixth death within the crash window;
* a migration waits until its target node's daemon runs.

Each reconcile pass here is called by the test (no manager thread), so what it starts
is exactly what the pass decided.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pvc.cluster.session import Cluster
from pvc.cluster.vm import define as vm_define
from pvc.domain_xml import build as domain_xml
from pvc.domain_xml.policy import XmlPolicy
from pvc.hypervisor.adapter import Hypervisor
from pvc.node import vm_manager
from pvc.node.vm_manager import VmManager, VmSettings
from pvc.state import nodes, paths
from pvc.state.cache import ClusterCache
from pvc.state.records import NodeStatic
from pvc.state.schema import ensure_schema
from pvc.state.states import DaemonState, NodeMode, VMState
from pvc.state.vms import update_placement
from tests.helpers import ManualClock, wait_for

T0 = 1000.0
#: The waits after the 1st, 2nd... 5th death (docs/vms.md: 1, 2, 4 ... seconds).
BACKOFFS = [1.0, 2.0, 4.0, 8.0, 16.0]
TICK = 0.001


@pytest.fixture
def manager(make_store, test_driver_uri):
    """hv1's VM manager (not started: the test runs its passes), hv2 registered beside it."""
    store = make_store()
    ensure_schema(store)
    for name in ("hv1", "hv2"):
        nodes.register(store, NodeStatic(name=name, mode=NodeMode.COORDINATOR))
        store.set(paths.node_daemon_state(name), DaemonState.RUN.value)
    cache = ClusterCache(store)
    cache.start()
    assert cache.wait_ready(10)
    wait_for(lambda: [n.daemon_state for n in cache.nodes()] == ["run", "run"])
    clock = ManualClock(T0)
    hypervisor = Hypervisor(test_driver_uri)
    made = VmManager(Cluster(store, cache), "hv1", hypervisor, VmSettings(shutdown_timeout=1.0), clock=clock)
    yield made, clock
    wait_for(lambda: not made._busy, 30)
    made.stop()
    hypervisor.close()
    cache.close()


def define(manager: VmManager, name: str, node: str = "hv1") -> str:
    xml = domain_xml.build(domain_xml.DomainSpec(name=name, memory_mib=64))
    uuid, _ = vm_define.define(manager.cluster, xml, node=node, policy=XmlPolicy())
    return uuid


def change(manager: VmManager, uuid: str, **fields: object) -> None:
    """Change the VM's placement as a client would, and wait until the manager's cache shows it."""
    _, commit = update_placement(manager.store, uuid, lambda p: replace(p, **fields))
    manager.cluster.settle(commit)


def settle(manager: VmManager) -> None:
    """Wait until the actions the last pass started are done and the cache shows them."""
    wait_for(lambda: not manager._busy, 20)


def passes(manager: VmManager) -> list[str]:
    started = manager.reconcile()
    settle(manager)
    return started


def test_a_crashing_vm_is_restarted_after_1_2_4_8_16_seconds_then_marked_failed(manager):
    vms, clock = manager
    uuid = define(vms, "crashy")
    # It should run here and its record says so, but libvirt does not run it: its QEMU died.
    change(vms, uuid, state=VMState.START, running_on="hv1")
    assert [s.split(":")[0] for s in passes(vms)] == ["recover crashy"]  # the first death: at once
    wait_for(lambda: vms.cache.vm(uuid).placement.restarts == 1)
    crashed_at = clock.now
    for restarts, backoff in enumerate(BACKOFFS[:-1], start=2):
        assert uuid in vms.hypervisor.active()
        vms.hypervisor.destroy(uuid)  # it dies again
        clock.now = crashed_at + backoff - TICK
        assert passes(vms) == [], f"restarted before {backoff} s"
        clock.now = crashed_at = crashed_at + backoff
        assert [s.split(":")[0] for s in passes(vms)] == ["recover crashy"], (
            f"not restarted after {backoff} s"
        )
        wait_for(lambda restarts=restarts: vms.cache.vm(uuid).placement.restarts == restarts)
    # The sixth death within the crash window: no more restarts.
    vms.hypervisor.destroy(uuid)
    clock.now = crashed_at + BACKOFFS[-1] - TICK
    assert passes(vms) == []
    clock.now = crashed_at + BACKOFFS[-1]
    assert passes(vms)
    wait_for(lambda: vms.cache.vm(uuid).placement.state == VMState.FAIL)
    placement = vms.cache.vm(uuid).placement
    assert "died 6 times within 300 s" in placement.failed_reason and placement.restarts == 5
    assert uuid not in vms.hypervisor.active()


def test_deaths_older_than_the_crash_window_no_longer_lengthen_the_wait(manager):
    vms, clock = manager
    uuid = define(vms, "oldcrash")
    change(vms, uuid, state=VMState.START, running_on="hv1")
    window = vm_manager.CRASH_WINDOW
    for died_at in (T0, T0 + 1, T0 + window - 0.5):  # three deaths, each restarted at once
        clock.now = died_at
        assert [s.split(":")[0] for s in passes(vms)] == ["recover oldcrash"]
        vms.hypervisor.destroy(uuid)
    # 2 s after the last death the first two are over the window old: one death counts, so
    # the wait is 1 s (with all three counted it would be 4 s).
    clock.now = T0 + window + 1.5
    assert [s.split(":")[0] for s in passes(vms)] == ["recover oldcrash"]


def test_a_migration_waits_until_its_target_runs(manager):
    vms, _ = manager
    uuid = define(vms, "mover")
    change(vms, uuid, state=VMState.START)
    assert [s.split(":")[0] for s in passes(vms)] == ["start mover"]
    wait_for(lambda: vms.cache.vm(uuid).placement.running_on == "hv1")
    # hv2's daemon is not running (it died or is starting): the VM is assigned to it anyway.
    vms.store.set(paths.node_daemon_state("hv2"), DaemonState.DEAD.value)
    update_placement(
        vms.store, uuid, lambda p: replace(p, node="hv2", last_node="hv1", state=VMState.MIGRATE)
    )
    wait_for(
        lambda: vms.cache.vm(uuid).placement.node == "hv2" and vms.cache.node("hv2").daemon_state == "dead"
    )
    for _ in range(3):
        assert passes(vms) == []  # waits; the VM keeps running here
    assert uuid in vms.hypervisor.active()
    vms.store.set(paths.node_daemon_state("hv2"), DaemonState.RUN.value)
    wait_for(lambda: vms.cache.node("hv2").daemon_state == "run")
    assert [s.split(":")[0] for s in passes(vms)] == ["migrate mover"]
