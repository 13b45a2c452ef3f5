"""Fencing and recovery in the lab: real QEMU guests on RBD disks, each node's simulated BMC
really stopping and starting it, and the guests' serial heartbeats as the witness.

One lab (3 coordinators, Ceph) for the whole module; each test leaves the cluster healthy,
with every node ``run`` and ``ready``, for the next. Timings at the lab's defaults: dead
after 5 s, fenced at 6 s, self-fence at 3 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pvc.lab import demo, endpoint, power
from pvc.lab.bmc import BmcSim
from pvc.lab.layout import LabLayout
from pvc.lab.witness import (
    AddressWitness,
    beating_since_boot,
    boots,
    fence_record,
    lab_store,
    watching,
)
from pvc.state import paths
from pvc.state.fencing import FenceState
from pvc.state.records import NodeStatic
from tests.helpers import wait_for
from tests.lab.lab_run import lab_up

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PREFIX, NET_INDEX = "pvcf", 78
#: Seconds to wait for a fence and recovery (the target is well under 30).
RECOVERY = 90.0


@pytest.fixture(scope="module")
def lab():
    # Without the database members: fencing's timings are measured on a 2-core machine, where
    # a Patroni failover beside the guests' recovery would compete with their boot for CPU.
    with lab_up("pvc-lab-fence-", PREFIX, NET_INDEX, database=False) as layout:
        yield layout


def lab_cli(layout: LabLayout, *args: str) -> str:
    command = [sys.executable, "-m", "pvc.lab.cli", "--dir", str(layout.directory), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"pvc-lab {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


class Cluster:
    """The lab seen through its API."""

    def __init__(self, layout: LabLayout) -> None:
        self.layout = layout
        self.api = endpoint.client(layout, read_timeout=600)

    def get(self, path: str, **params) -> dict | list:
        reply = self.api.get(path, params=params) if params else self.api.get(path)
        assert reply.status == 200, (path, reply.status, reply.data)
        return reply.data

    def post(self, path: str, **data) -> dict:
        reply = self.api.post(path, data=data)
        assert reply.status in (200, 202), (path, reply.status, reply.data)
        return reply.data

    def one(self, path: str) -> dict:
        """A single object (v1 answers some of them as a list of one)."""
        data = self.get(path)
        return data[0] if isinstance(data, list) else data

    def node(self, name: str) -> dict:
        return self.one(f"/node/{name}")

    def states(self, name: str) -> tuple[str, str]:
        node = self.node(name)
        return node["daemon_state"], node["domain_state"]

    def primary(self) -> str:
        return self.get("/status")["primary_node"]

    def vm_node(self, vm: str) -> str:
        return self.one(f"/vm/{vm}")["node"]

    def guest(self, name: str, node: str) -> None:
        """A guest on its own RBD volume, started on ``node``, booted and beating."""
        demo.start_guests(self.layout, [name], node=node, heartbeat_us=250_000, rbd_size="32M", say=print)
        wait_for(lambda: beating_since_boot(self.layout, name, boots(self.layout, name)), timeout=120)

    def restore(self) -> None:
        """Bring every node back to run and ready, whatever a test before left (a failed
        test must not fail the ones after it)."""
        for node in _partitioned(self.layout):
            lab_cli(self.layout, "node", "heal", node)
        lab_cli(self.layout, "up")  # starts what has died, powers on what is off
        wait_for(lambda: all(self.states(n)[0] == "run" for n in self.layout.node_names), timeout=RECOVERY)
        for node in self.layout.node_names:
            if self.states(node)[1] != "ready":
                self.post(f"/node/{node}/domain-state", state="ready", wait="true")
        wait_for(self.all_ready, timeout=120, interval=0.5)

    def all_ready(self) -> bool:
        return all(self.states(node) == ("run", "ready") for node in self.layout.node_names)

    def back_in_service(self, node: str) -> None:
        """Wait for a fenced node to rejoin (flushed), then make it ready again."""
        wait_for(lambda: self.states(node) == ("run", "flushed"), timeout=RECOVERY, interval=0.5)
        self.post(f"/node/{node}/domain-state", state="ready", wait="true")
        wait_for(self.all_ready, timeout=120, interval=0.5)


def _partitioned(layout: LabLayout) -> list[str]:
    return json.loads(layout.state_file.read_text()).get("partitions", [])


def recovered_elsewhere(cluster: Cluster, guests: dict[str, int], dead: str) -> bool:
    """Every guest booted once more than before, away from ``dead``, and is beating."""
    layout = cluster.layout
    where = demo.running_on(layout)
    return all(
        where.get(guest, []) and dead not in where[guest] and beating_since_boot(layout, guest, before + 1)
        for guest, before in guests.items()
    )


def test_power_loss_fences_the_node_and_its_guests_run_again_elsewhere(lab: LabLayout):
    cluster = Cluster(lab)
    wait_for(cluster.all_ready, timeout=60, interval=0.5)
    guests = ["pl1", "pl2", "pl3"]
    for guest in guests:
        cluster.guest(guest, "hv3")
    before = {guest: boots(lab, guest) for guest in guests}
    with watching(guests) as qemu:
        began = time.monotonic()
        lab_cli(lab, "node", "poweroff", "hv3")
        wait_for(lambda: recovered_elsewhere(cluster, before, "hv3"), timeout=RECOVERY, interval=0.2)
        took = time.monotonic() - began
    print(f"power loss -> every guest beating elsewhere in {took:.1f} s")
    assert took < 30
    for guest in guests:
        assert qemu.most[guest] == 1 and qemu.overlaps(guest) == [], (guest, qemu.lifetimes(guest))
        assert cluster.vm_node(guest) in ("hv1", "hv2")
        assert cluster.one(f"/vm/{guest}")["last_node"] == "hv3"
    record = wait_for(lambda: (r := fence_record(lab, "hv3")) and r.done and r, timeout=30)
    assert record.state == FenceState.FENCED and "power state: off" in record.steps
    assert sorted(line.split(" ->")[0] for line in record.recovered) == guests
    bmc = BmcSim.attach(lab.bmc_dir)
    sets = [call.args for call in bmc.calls("hv3") if call.op == "set"]
    assert sets[-2:] == [("power", "0"), ("power", "1")]
    # The node powers back on and rejoins flushed; ready brings its guests home.
    cluster.back_in_service("hv3")
    wait_for(lambda: all(cluster.vm_node(g) == "hv3" for g in guests), timeout=120, interval=0.5)


def test_a_partitioned_node_stops_its_guests_before_any_peer_starts_them(lab: LabLayout):
    cluster = Cluster(lab)
    cluster.restore()
    guests = ["pl1", "pl2", "pl3"]  # back on hv3 after the power loss
    wait_for(lambda: all(demo.running_on(lab).get(g) == ["hv3"] for g in guests), timeout=120, interval=0.5)
    before = {guest: boots(lab, guest) for guest in guests}
    with watching(guests) as qemu:
        cut = time.monotonic()
        lab_cli(lab, "node", "partition", "hv3")
        try:
            wait_for(lambda: recovered_elsewhere(cluster, before, "hv3"), timeout=RECOVERY, interval=0.2)
        finally:
            lab_cli(lab, "node", "heal", "hv3")
    for guest in guests:
        spans = qemu.lifetimes(guest)
        assert qemu.most[guest] == 1 and qemu.overlaps(guest) == [], (guest, spans)
        old, new = spans[0], spans[-1]
        print(
            f"{guest}: old QEMU gone {old[1] - cut:.1f} s after the cut, new one up at {new[0] - cut:.1f} s"
        )
        assert old[1] - cut < 3 + 2 + 1  # self-fence: suicide_after + the time allowed to stop
        assert new[0] > old[1]
    record = fence_record(lab, "hv3")
    assert record is not None and record.state == FenceState.FENCED
    cluster.back_in_service("hv3")


def test_a_bmc_that_does_not_answer_leaves_the_guests_stopped_with_a_fault(lab: LabLayout):
    cluster = Cluster(lab)
    cluster.restore()
    victim = next(node for node in reversed(lab.node_names) if node != cluster.primary())
    guest = "bmc1"
    cluster.guest(guest, victim)
    bmc = BmcSim.attach(lab.bmc_dir)
    bmc.pause(victim)
    try:
        with watching([guest]) as qemu:
            lab_cli(lab, "node", "poweroff", victim)
            cut = time.monotonic()
            wait_for(
                lambda: (r := fence_record(lab, victim)) and r.state == FenceState.FAILED and r.done,
                timeout=RECOVERY,
                interval=0.5,
            )
            time.sleep(3)
            faults = cluster.get("/faults")
            assert any(f"Fencing node {victim} failed" in fault["message"] for fault in faults), faults
            assert cluster.vm_node(guest) == victim  # failed_fence: none
            assert all(last <= cut for _, last in qemu.lifetimes(guest))  # no QEMU of it since
            assert cluster.states(victim) == ("dead", "ready")
            _views_tell_the_node_is_dead(cluster, victim)
    finally:
        bmc.resume(victim)
    # The node comes back by itself (an operator's power button): it runs its guest again,
    # and the fault is gone with the condition.
    lab_cli(lab, "node", "power", victim, "on")
    wait_for(lambda: cluster.states(victim) == ("run", "ready"), timeout=RECOVERY, interval=0.5)
    wait_for(lambda: demo.running_on(lab).get(guest) == [victim], timeout=120, interval=0.5)
    faults = cluster.get("/faults")
    assert not any(f"Fencing node {victim} failed" in fault["message"] for fault in faults), faults


def _views_tell_the_node_is_dead(cluster: Cluster, victim: str) -> None:
    """Node view, /status and metrics agree with the cluster: the dead node counts as dead,
    its last keepalive's figures are not shown as current, its fence is on view."""
    view = cluster.node(victim)
    assert view["health"] == view["load"] == view["domains_count"] == "N/A"
    assert view["fence"]["state"] == "failed" and view["fence"]["retry_at"] > time.time()
    status = cluster.get("/status")
    assert status["nodes"]["dead,ready"] == 1 and status["nodes"]["run,ready"] == 2
    alive = [node for node in status["detail"]["node"] if node["name"] != victim]
    assert status["resources"]["memory"]["total"] == sum(node["memory"]["total"] for node in alive)
    assert status["node_health"][victim]["health"] == "N/A"
    metrics = cluster.api.get("/metrics").text
    assert f'pvc_node_daemon_state{{node="{victim}",state="dead"}} 1.0' in metrics
    assert f'pvc_node_load{{node="{victim}"}}' not in metrics
    assert all(f'pvc_node_load{{node="{node["name"]}"}}' in metrics for node in alive)


def test_losing_the_primary_elects_another_whose_fencer_recovers_its_guests(lab: LabLayout):
    cluster = Cluster(lab)
    cluster.restore()
    primary = cluster.primary()
    guest = "prim1"
    cluster.guest(guest, primary)
    before = {guest: boots(lab, guest)}
    began = time.monotonic()
    lab_cli(lab, "node", "poweroff", primary)
    new_primary = wait_for(
        lambda: (p := _primary_or_none(cluster)) not in (None, "none", primary) and p,
        timeout=30,
        interval=0.2,
    )
    elected = time.monotonic() - began
    wait_for(lambda: recovered_elsewhere(cluster, before, primary), timeout=RECOVERY, interval=0.3)
    print(
        f"primary {primary} lost: {new_primary} primary after {elected:.1f} s, guest back at "
        f"{time.monotonic() - began:.1f} s"
    )
    assert elected < 15
    record = fence_record(lab, primary)
    assert record is not None and record.state == FenceState.FENCED and record.fencer != primary
    cluster.back_in_service(primary)


def _primary_or_none(cluster: Cluster) -> str | None:
    try:
        return cluster.primary()
    except Exception:  # the API moves with the primary: unreachable for a moment
        return None


def test_maintenance_mode_lets_a_node_die_without_a_fence(lab: LabLayout):
    cluster = Cluster(lab)
    cluster.restore()
    victim = next(node for node in lab.node_names if node != cluster.primary())
    fenced_before = fence_record(lab, victim)
    cluster.post("/status", state="true")
    try:
        lab_cli(lab, "node", "poweroff", victim)
        time.sleep(12)  # well past the dead window and the saving throw
        assert fence_record(lab, victim) == fenced_before
        assert cluster.states(victim)[0] == "run"  # nobody even declared it dead
        powered_on = time.time()
        lab_cli(lab, "node", "power", victim, "on")
        # its services start after the lab's boot delay: wait for its daemon to register anew
        wait_for(lambda: _registered_since(lab, victim, powered_on), timeout=RECOVERY, interval=0.5)
        wait_for(lambda: cluster.node(victim)["daemon_state"] == "run", timeout=30, interval=0.5)
    finally:
        cluster.post("/status", state="false")
    time.sleep(8)  # leaving maintenance re-baselines: nothing is fenced for the pause
    assert fence_record(lab, victim) == fenced_before
    wait_for(cluster.all_ready, timeout=60, interval=0.5)


def _registered_since(layout: LabLayout, node: str, since: float) -> bool:
    with lab_store(layout) as store:
        static = NodeStatic.from_bytes(store.get(paths.node(node)))
    return static is not None and static.registered > since


def test_a_frozen_primary_never_shares_its_addresses_and_rejoins_as_secondary(lab: LabLayout):
    cluster = Cluster(lab)
    cluster.restore()
    primary = cluster.primary()
    floating = [str(lab.floating(net).ip) for net in ("upstream", "cluster", "storage")]
    witness = AddressWitness(lab, floating)
    witness.start()
    try:
        wait_for(lambda: witness.samples > 5, timeout=10)
        assert all(witness.holders[name] == {primary} for name in witness.holders), witness.holders
        pid = _daemon_pid(lab, primary)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(20)
        finally:
            _continue(pid)  # frozen past the dead window, it has been fenced: maybe gone
        wait_for(lambda: _primary_or_none(cluster) not in (None, "none", primary), timeout=30, interval=0.3)
        time.sleep(3)
    finally:
        witness.stop()
    print(f"{witness.samples} samples; holders: {witness.holders}")
    assert witness.doubles == [], witness.doubles[:5]
    assert all(len(holders) == 2 for holders in witness.holders.values()), witness.holders  # moved once
    # Frozen for 20 s it was declared dead and fenced (its BMC power-cycled it): it rejoins
    # as a secondary, flushed.
    wait_for(
        lambda: cluster.node(primary)["coordinator_state"] == "secondary", timeout=RECOVERY, interval=0.5
    )
    cluster.back_in_service(primary)


def _daemon_pid(layout: LabLayout, node: str) -> int:
    state = json.loads(layout.state_file.read_text())
    return int(state["processes"][f"{node}/pvcnoded"]["pid"])


def _continue(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


def test_a_daemon_killed_during_a_live_migration_leaves_the_guest_running_once(lab: LabLayout):
    cluster = Cluster(lab)
    cluster.restore()
    primary = cluster.primary()
    source, target = (node for node in lab.node_names if node != primary)
    guest = "mig1"
    cluster.guest(guest, source)
    with watching([guest]) as qemu:
        cluster.post(f"/vm/{guest}/node", action="migrate", node=target, force_live="true")
        lab_cli(lab, "node", "kill", source)  # only its daemon; never started again by hand
        wait_for(
            lambda: (r := fence_record(lab, source)) and r.done and r.state == FenceState.FENCED,
            timeout=RECOVERY,
            interval=0.5,
        )
        wait_for(lambda: cluster.one(f"/vm/{guest}")["state"] == "start", timeout=60, interval=0.5)
        wait_for(lambda: demo.running_on(lab).get(guest) == [target], timeout=RECOVERY, interval=0.5)
        wait_for(lambda: beating_since_boot(lab, guest, boots(lab, guest), beats=3), timeout=60)
        time.sleep(2)
    # One QEMU at the end, and never a third: the migration's two (source and target) at most.
    assert demo.running_on(lab).get(guest) == [target]
    assert qemu.most[guest] <= 2
    spans = qemu.lifetimes(guest)
    last_seen = max(last for _, last in spans)
    assert len([span for span in spans if span[1] == last_seen]) == 1, spans
    assert cluster.vm_node(guest) == target
    cluster.back_in_service(source)


def test_up_right_after_a_daemon_died_waits_out_the_fence_it_races(lab: LabLayout):
    """``pvc-lab up`` restarts a daemon the cluster has just declared dead: the fence that
    follows kills what ``up`` started, and ``up`` waits for the node to be powered on and
    its services started again instead of failing."""
    cluster = Cluster(lab)
    cluster.restore()
    victim = next(node for node in lab.node_names if node != cluster.primary())
    lab_cli(lab, "node", "kill", victim)
    wait_for(lambda: cluster.states(victim)[0] == "dead", timeout=30, interval=0.1)
    began = time.time()
    output = lab_cli(lab, "up")
    print(output)
    cut = power.last_power_cut(lab, victim, began) is not None
    assert (f"the cluster fenced {victim} meanwhile" in output) <= cut
    wait_for(lambda: all(cluster.states(n)[0] == "run" for n in lab.node_names), timeout=RECOVERY)
    record = fence_record(lab, victim)
    if cut:
        assert record is not None and record.state == FenceState.FENCED
        cluster.back_in_service(victim)
    else:  # the restarted daemon's keepalive came first: no fence
        cluster.restore()

    # and once the fence has begun: up waits for it to end before it restarts anything
    lab_cli(lab, "node", "kill", victim)
    wait_for(lambda: (r := fence_record(lab, victim)) and not r.done, timeout=30, interval=0.1)
    output = lab_cli(lab, "up")
    print(output)
    assert f"waited for the cluster's fence of {victim} to end" in output
    assert fence_record(lab, victim).state == FenceState.FENCED
    cluster.back_in_service(victim)
