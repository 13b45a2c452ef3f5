"""Fencing a dead peer and recovering its VMs, on a real ZooKeeper (the BMC is a stand-in
here; tests/integration/test_fence_ipmi.py fences through ipmitool and ipmi_sim).

n1 and n3 are coordinators watching n2. Their monotonic clocks are under the test's
control (the saving throws are timed on them); the IPMI waits are skipped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from pvc.cluster.faults.queries import fault_id, get_fault
from pvc.cluster.session import Cluster
from pvc.cluster.vm import define as vm_define
from pvc.config import parse_config
from pvc.domain_xml import build as domain_xml
from pvc.domain_xml.policy import XmlPolicy
from pvc.lab.bmc import BmcSim
from pvc.node.fencing import FENCE_FAILED, VMS_STRANDED, Fencer, IpmiPower
from pvc.power.ipmi import IpmiError, IpmiFailure, IpmiTarget, PowerState
from pvc.state import nodes, paths
from pvc.state.cache import ClusterCache
from pvc.state.fencing import FenceState, IpmiRecord, read_fence, record_ipmi
from pvc.state.records import Keepalive, NodeStatic, encode
from pvc.state.schema import ensure_schema
from pvc.state.settings import set_maintenance
from pvc.state.states import DaemonState, DomainState, NodeMode, VMState
from pvc.state.vms import update_placement
from tests.helpers import ManualClock, free_udp_ports, node_config_data, wait_for

KEEPALIVE_INTERVAL = 0.5
SAVING_THROWS = 2
SAVING_WINDOW = KEEPALIVE_INTERVAL * SAVING_THROWS
T0 = 100.0


class FakeBmc:
    """A BMC stand-in: powers a node off and on, or fails as told; records every call."""

    def __init__(self) -> None:
        self.power: dict[str, PowerState] = {}
        self.calls: list[tuple[str, str]] = []
        self.unreachable = False
        self.ignores_off = False
        self._lock = threading.Lock()

    def _call(self, action: str, target: IpmiTarget) -> None:
        with self._lock:
            self.calls.append((action, target.host))
        if self.unreachable:
            raise IpmiError(f"{action} on {target}: no answer within 1 s", IpmiFailure.UNREACHABLE)

    def off(self, target: IpmiTarget) -> None:
        self._call("off", target)
        if not self.ignores_off:
            self.power[target.host] = PowerState.OFF

    def on(self, target: IpmiTarget) -> None:
        self._call("on", target)
        self.power[target.host] = PowerState.ON

    def status(self, target: IpmiTarget) -> PowerState:
        self._call("status", target)
        return self.power.get(target.host, PowerState.ON)


def fencer_config(name: str, *, failed_fence: str = "none"):
    data = node_config_data(name, ["n1", "n2", "n3"], "127.0.0.1:2181", keepalive_interval=KEEPALIVE_INTERVAL)
    data["fencing"] = {"saving_throws": SAVING_THROWS, "actions": {"failed_fence": failed_fence}}
    if failed_fence == "migrate":
        data["timers"].update(fence_intervals=12, suicide_intervals=2)
    return parse_config(data)


class World:
    """Three registered nodes, VMs on n2, and fencers on n1 and n3."""

    def __init__(self, store, power=None, **config) -> None:
        self.store = store
        ensure_schema(store)
        for name in ("n1", "n2", "n3"):
            nodes.register(store, NodeStatic(name=name, mode=NodeMode.COORDINATOR))
            store.set(paths.node_daemon_state(name), DaemonState.RUN.value)
            keepalive = Keepalive(timestamp=0.0, memory={"total": 4096, "used": 0, "free": 4096})
            store.set(paths.node_keepalive(name), encode(keepalive))
        record_ipmi(store, "n2", IpmiRecord("bmc-n2", "admin", "secret"))
        self.cache = ClusterCache(store)
        self.cache.start()
        assert self.cache.wait_ready(10)
        self.cluster = Cluster(store, self.cache)
        self.bmc = FakeBmc()
        self.broken: list[str] = []
        self.osds_down: list[str] = []
        self.clock = ManualClock(T0)
        self.fencers = {
            name: Fencer(
                fencer_config(name, **config),
                self.cluster,
                break_locks=self._break_locks,
                osds_down=self._osds_down,
                active=lambda: True,
                power=power or self.bmc,
                monotonic=self.clock,
                wall=self.clock,
                sleep=lambda seconds: None,
            )
            for name in ("n1", "n3")
        }
        wait_for(lambda: len(self.cache.nodes()) == 3)

    def _osds_down(self, node: str) -> str | None:
        self.osds_down.append(node)
        return f"marked the OSDs of {node} down"

    def _break_locks(self, vm, held_from) -> str | None:
        self.broken.append(vm.meta.name if held_from is None else f"{vm.meta.name} from {held_from}")
        return None

    def vm(self, name: str, node: str = "n2", state: str = VMState.START, **meta) -> str:
        xml = domain_xml.build(domain_xml.DomainSpec(name=name, memory_mib=256))
        uuid, _ = vm_define.define(self.cluster, xml, node=node, policy=XmlPolicy(), **meta)
        _, commit = update_placement(self.store, uuid, lambda p: replace(p, state=state, running_on=node))
        self.cluster.settle(commit)
        return uuid

    def kill(self, name: str = "n2") -> None:
        """The loop's verdict: n2 is dead."""
        self.cluster.settle(self.store.set(paths.node_daemon_state(name), DaemonState.DEAD.value))

    def fence(self, fencer: str = "n1") -> list[str]:
        """n2 dies and its saving throws run out: the fences the fencer's pass starts."""
        self.kill()
        self.passes(fencer)
        self.clock.now += SAVING_WINDOW
        return self.passes(fencer)

    def passes(self, fencer: str = "n1") -> list[str]:
        started = self.fencers[fencer].run_pass()
        assert self.fencers[fencer].wait_idle(20)
        return started

    def placement(self, uuid: str):
        return wait_for(lambda: self.cache.vm(uuid)).placement

    def close(self) -> None:
        self.cache.close()


@pytest.fixture
def world(make_store):
    made = World(make_store())
    yield made
    made.close()


def test_a_dead_node_is_fenced_after_its_saving_throws_and_its_vms_recovered(world):
    small = world.vm("small")
    limited = world.vm("limited", limit=["n2"])
    stopped = world.vm("stopped", state=VMState.STOP)
    world.kill()
    assert world.passes() == []  # its saving throws begin
    world.clock.now += SAVING_WINDOW - 0.01
    assert world.passes() == []
    assert world.bmc.calls == []
    world.clock.now += 0.02
    assert world.passes() == ["n2"]
    assert [call for call, _ in world.bmc.calls] == ["off", "status", "on", "status"]
    record = read_fence(world.store, "n2")
    assert (record.state, record.fencer, record.done) == (FenceState.FENCED, "n1", True)
    assert record.recovered == ["small -> n1"] or record.recovered == ["small -> n3"]
    assert record.stranded == ["limited"]
    assert world.store.get_text(paths.node_daemon_state("n2")) == DaemonState.FENCED
    assert world.store.get_text(paths.node_domain_state("n2")) == DomainState.FLUSHED
    moved = world.placement(small)
    assert (moved.node in ("n1", "n3"), moved.last_node, moved.state) == (True, "n2", VMState.START)
    assert world.placement(limited).state == VMState.STOP
    assert world.placement(stopped).node == "n2"
    assert world.broken == ["small"]
    wait_for(lambda: world.osds_down == ["n2"])  # marked down in the background as the fence began
    fault = get_fault(world.cluster, fault_id(VMS_STRANDED, "n2"))
    assert fault is not None and "limited" in fault.message


def test_a_keepalive_during_the_saving_throws_cancels_the_fence(world):
    world.vm("vm")
    world.kill()
    world.passes()
    # n2's daemon reclaims run (what its keepalive does when it finds itself dead).
    world.cluster.settle(world.store.set(paths.node_daemon_state("n2"), DaemonState.RUN.value))
    world.clock.now += SAVING_WINDOW * 3
    assert world.passes() == []
    assert world.bmc.calls == []
    assert read_fence(world.store, "n2") is None


def test_the_node_coming_back_as_the_fence_commits_wins_or_loses_cleanly(world):
    """The fence commits only on the dead state it read: a reclaim in between makes it a no-op."""
    world.vm("vm")
    world.kill()
    world.passes()
    world.clock.now += SAVING_WINDOW
    stale = world.cache.node("n2")
    world.cluster.settle(world.store.set(paths.node_daemon_state("n2"), DaemonState.RUN.value))
    from pvc.state.fencing import begin_fence

    _, domain_version = world.cache.domain_state("n2")
    assert begin_fence(world.store, stale, domain_version, "n1", 0.0) is None
    assert world.store.get_text(paths.node_domain_state("n2")) == DomainState.READY


def test_only_one_coordinator_fences(world):
    world.vm("vm")
    world.kill()
    for name in ("n1", "n3"):
        world.fencers[name].run_pass()
    world.clock.now += SAVING_WINDOW
    gate = threading.Event()
    original = world.bmc.off

    def slow_off(target):
        gate.wait(5)
        original(target)

    world.bmc.off = slow_off
    first = world.fencers["n1"].run_pass()
    second = world.fencers["n3"].run_pass()
    gate.set()
    assert world.fencers["n1"].wait_idle(20) and world.fencers["n3"].wait_idle(20)
    assert first == ["n2"] and second == []
    assert [call for call, _ in world.bmc.calls].count("off") == 1
    world.clock.now += 1
    assert world.fencers["n3"].run_pass() == []  # fenced, recovered and flushed: nothing to do


def test_a_bmc_that_does_not_answer_fails_the_fence_and_leaves_the_vms(world):
    uuid = world.vm("vm")
    world.bmc.unreachable = True
    assert world.fence() == ["n2"]
    record = read_fence(world.store, "n2")
    assert record.state == FenceState.FAILED and "no answer" in record.error
    assert world.store.get_text(paths.node_daemon_state("n2")) == DaemonState.DEAD
    assert world.store.get_text(paths.node_domain_state("n2")) == DomainState.READY
    assert world.placement(uuid).node == "n2"
    assert world.broken == []  # no lock is broken for a node that may still run
    wait_for(lambda: world.osds_down == ["n2"])  # its OSDs were marked down when the fence began
    fault = get_fault(world.cluster, fault_id(FENCE_FAILED, "n2"))
    assert fault is not None and "failed_fence: none" in fault.message
    # Tried again only after the back-off.
    world.clock.now += 1
    assert world.passes() == []
    world.bmc.unreachable = False
    world.clock.now += 60
    assert world.passes() == ["n2"]
    assert read_fence(world.store, "n2").state == FenceState.FENCED
    wait_for(lambda: get_fault(world.cluster, fault_id(FENCE_FAILED, "n2")) is None)


def test_the_retry_back_off_is_kept_in_the_record_and_honoured_by_every_coordinator(world):
    world.bmc.unreachable = True
    assert world.fence("n1") == ["n2"]
    first = read_fence(world.store, "n2")
    assert (first.attempt, first.retry_at) == (1, T0 + SAVING_WINDOW + 30)
    # n3 saw the same death: it waits for the retry time too, then tries once more.
    world.passes("n3")
    world.clock.now += 20
    assert world.passes("n3") == [] and world.passes("n1") == []
    world.clock.now += 11
    assert world.passes("n3") == ["n2"]
    second = read_fence(world.store, "n2")
    assert (second.attempt, second.fencer) == (2, "n3")
    assert second.retry_at == world.clock.now + 60  # doubled
    fault = get_fault(world.cluster, fault_id(FENCE_FAILED, "n2"))
    assert "try 2" in fault.message and "60 s" in fault.message
    # A new death (the node came back, then died again) starts from the first try.
    world.cluster.settle(world.store.set(paths.node_daemon_state("n2"), DaemonState.RUN.value))
    world.clock.now += 1
    world.passes("n1")
    assert world.fence("n1") == ["n2"]
    assert read_fence(world.store, "n2").attempt == 1


def test_a_fenced_node_is_powered_on_before_it_leaves_fence_flush(world):
    """A fencer that dies after the recovery must leave the node to be powered on by the
    next one: the domain state leaves fence-flush only after power on."""
    world.vm("vm")
    seen: list[str] = []
    original_on = world.bmc.on

    def on(target: IpmiTarget) -> None:
        seen.append(world.store.get_text(paths.node_domain_state("n2")))
        original_on(target)

    world.bmc.on = on
    world.fence()
    assert seen == [DomainState.FENCE_FLUSH]
    assert world.store.get_text(paths.node_domain_state("n2")) == DomainState.FLUSHED


def test_a_node_still_powered_on_after_power_off_is_not_fenced(world):
    world.vm("vm")
    world.bmc.ignores_off = True
    world.fence()
    record = read_fence(world.store, "n2")
    assert record.state == FenceState.FAILED and "still powered on" in record.error


def test_a_node_without_ipmi_credentials_is_not_fenced_and_says_why(world):
    world.vm("vm")
    record_ipmi(world.store, "n2", None)
    world.fence()
    record = read_fence(world.store, "n2")
    assert record.state == FenceState.FAILED and "no IPMI host, user and password" in record.error
    assert world.bmc.calls == []


def test_failed_fence_migrate_recovers_anyway(make_store):
    world = World(make_store(), failed_fence="migrate")
    try:
        uuid = world.vm("vm")
        world.bmc.unreachable = True
        world.kill()
        world.passes()
        world.clock.now += KEEPALIVE_INTERVAL * SAVING_THROWS
        world.passes()
        assert read_fence(world.store, "n2").state == FenceState.FAILED
        assert world.placement(uuid).node in ("n1", "n3")
        assert world.store.get_text(paths.node_domain_state("n2")) == DomainState.FLUSHED
    finally:
        world.close()


def test_maintenance_mode_pauses_fencing(world):
    world.vm("vm")
    world.cluster.settle(set_maintenance(world.store, True))
    world.kill()
    world.passes()
    world.clock.now += SAVING_WINDOW * 10
    assert world.passes() == []
    world.cluster.settle(set_maintenance(world.store, False))
    assert world.passes() == []  # the saving throws start again from here
    world.clock.now += SAVING_WINDOW
    assert world.passes() == ["n2"]


def test_a_fence_left_half_done_is_resumed_by_another_coordinator(world):
    """n1 powered n2 off and died before recovering its VMs: n3 finishes the job."""
    uuid = world.vm("vm")
    world.kill()
    node = world.cache.node("n2")
    _, domain_version = world.cache.domain_state("n2")
    from pvc.state.fencing import begin_fence, record_fence

    record = begin_fence(world.store, node, domain_version, "n1", 0.0)
    record_fence(world.store, "n2", replace(record, state=FenceState.FENCED), outcome=True)
    world.bmc.power["bmc-n2"] = PowerState.OFF
    wait_for(lambda: world.cache.domain_state("n2")[0] == DomainState.FENCE_FLUSH)
    assert world.passes("n3") == ["n2"]
    assert [call for call, _ in world.bmc.calls] == ["on", "status"]  # not fenced twice
    assert world.placement(uuid).node in ("n1", "n3")
    assert read_fence(world.store, "n2").done


def test_unusable_ipmi_settings_fail_the_fence_with_a_reason(world):
    world.vm("vm")
    record_ipmi(world.store, "n2", IpmiRecord("-oProxyCommand=x", "admin", "secret"))
    world.fence()
    record = read_fence(world.store, "n2")
    assert record.state == FenceState.FAILED and "unusable IPMI settings" in record.error
    assert world.bmc.calls == []


@pytest.fixture
def bmc(tmp_path):
    sim = BmcSim(tmp_path / "bmcs", "127.0.0.1", [("n2", free_udp_ports(1)[0])], password="secret")
    sim.start()
    yield sim
    sim.stop()


def real_world(make_store, bmc: BmcSim) -> World:
    made = World(make_store(), power=IpmiPower(3.0))
    target = bmc.target("n2")
    record_ipmi(made.store, "n2", IpmiRecord(target.host, target.user, target.password, target.port))
    return made


def test_fencing_through_ipmitool_and_a_simulated_bmc(make_store, bmc):
    world = real_world(make_store, bmc)
    try:
        uuid = world.vm("vm")
        assert world.fence() == ["n2"]
        record = read_fence(world.store, "n2")
        assert record.state == FenceState.FENCED, record
        assert "power state: off" in record.steps
        assert [call.args for call in bmc.calls("n2") if call.op == "set"] == [("power", "0"), ("power", "1")]
        assert bmc.power("n2") == PowerState.ON
        assert world.placement(uuid).node in ("n1", "n3")
    finally:
        world.close()


def test_a_bmc_that_stopped_answering_fails_the_fence_within_the_timeout(make_store, bmc):
    world = real_world(make_store, bmc)
    bmc.pause("n2")
    try:
        uuid = world.vm("vm")
        world.kill()
        world.passes()
        world.clock.now += SAVING_WINDOW
        began = time.monotonic()
        world.passes()
        took = time.monotonic() - began
        record = read_fence(world.store, "n2")
        assert record.state == FenceState.FAILED and "no answer" in record.error, record
        assert took < 2 * 3.0 + 1  # power off and the power check, each bounded by ipmi_timeout
        assert world.placement(uuid).node == "n2"
    finally:
        bmc.resume("n2")
        world.close()


def test_a_migration_away_from_the_dead_node_is_left_to_its_target_with_the_dead_locks_broken(world):
    """n2 died while sending a VM to n3: the VM belongs to n3, which starts it (or finds it
    arrived); only the locks n2's QEMU held (from n2's storage address) are broken."""
    static = world.cache.node("n2").static
    moved = replace(static, storage_address="10.120.0.2")
    world.cluster.settle(world.store.set(paths.node("n2"), encode(moved)))
    uuid = world.vm("leaving", node="n2")
    _, commit = update_placement(world.store, uuid, lambda p: replace(p, node="n3", state=VMState.MIGRATE))
    world.cluster.settle(commit)
    world.fence()
    assert world.broken == ["leaving from 10.120.0.2"]
    placement = world.placement(uuid)
    assert (placement.node, placement.state, placement.running_on) == ("n3", VMState.MIGRATE, "n2")
    assert read_fence(world.store, "n2").recovered == []
