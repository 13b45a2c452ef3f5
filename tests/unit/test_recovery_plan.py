"""Where a fenced node's VMs go (pvc.cluster.node.recovery.plan), on records alone."""

from pvc.cluster.node.recovery import plan, to_recover
from pvc.state.records import Keepalive, NodeRecord, NodeStatic
from pvc.state.states import DaemonState, DomainState, VMState
from pvc.state.vms import VmMeta, VmPlacement, VmRecord


def node(name: str, memory: int = 8192, *, state: str = DaemonState.RUN, domain: str = DomainState.READY):
    keepalive = Keepalive(timestamp=0.0, memory={"total": memory, "used": 0, "free": memory})
    return NodeRecord(
        name=name,
        static=NodeStatic(name=name),
        daemon_state=state,
        domain_state=domain,
        keepalive=keepalive,
        present=state == DaemonState.RUN,
    )


def vm(name: str, on: str = "dead", state: str = VMState.START, *, memory: int = 1024, **meta) -> VmRecord:
    running_on = meta.pop("running_on", on if state == VMState.START else "")
    return VmRecord(
        uuid=f"uuid-{name}",
        meta=VmMeta(name=name, uuid=f"uuid-{name}", memory_mib=memory, vcpus=1, **meta),
        placement=VmPlacement(state=state, node=on, running_on=running_on),
        xml="",
    )


NODES = [node("dead", state=DaemonState.FENCED, domain=DomainState.FENCE_FLUSH), node("a"), node("b", 4096)]


def targets(moves) -> dict[str, str | None]:
    return {move.vm.meta.name: move.target for move in moves}


def test_only_vms_meant_to_run_on_the_dead_node_are_recovered():
    vms = [
        vm("up"),
        vm("migrating", state=VMState.MIGRATE),
        vm("stopped", state=VMState.STOP),
        vm("disabled", state=VMState.DISABLE),
        vm("elsewhere", on="a"),
    ]
    assert sorted(v.meta.name for v in to_recover(vms, "dead")) == ["migrating", "up"]
    assert set(targets(plan(NODES, vms, "dead", default_selector="mem"))) == {"migrating", "up"}


def test_the_plan_counts_what_it_placed_so_vms_spread_by_free_memory():
    # a has 8 GiB free, b 4 GiB. 2 GiB each: a (6 left), a (4 left), tie at 4 -> a by name
    # (2 left), then b. Without counting its own placements every VM would go to a.
    vms = [vm(f"vm{i}", memory=2048) for i in range(4)]
    chosen = targets(plan(NODES, vms, "dead", default_selector="mem"))
    assert chosen == {"vm0": "a", "vm1": "a", "vm2": "a", "vm3": "b"}


def test_node_limit_and_selector_are_honoured():
    vms = [
        vm("limited", node_limit=["b"]),
        vm("by_vms", node_selector="vms"),
        vm("nowhere", node_limit=["dead"]),
    ]
    busy_a = [*vms, vm("running-on-a", on="a")]
    chosen = targets(plan(NODES, busy_a, "dead", default_selector="mem"))
    assert chosen["limited"] == "b"
    assert chosen["by_vms"] == "b"  # a already runs one VM
    assert chosen["nowhere"] is None


def test_unready_or_dead_nodes_take_nothing():
    nodes = [*NODES[:1], node("a", domain=DomainState.FLUSHED), node("b", state=DaemonState.DEAD)]
    assert targets(plan(nodes, [vm("x")], "dead", default_selector="mem")) == {"x": None}


def test_a_node_unfit_for_a_vm_is_skipped():
    chosen = targets(plan(NODES, [vm("sriov")], "dead", default_selector="mem", unfit=lambda v: ["a"]))
    assert chosen == {"sriov": "b"}


def test_a_migration_to_the_dead_node_stays_on_the_live_node_that_runs_it():
    inbound = vm("inbound", state=VMState.MIGRATE, running_on="b")
    moves = plan(NODES, [inbound], "dead", default_selector="mem")
    assert [(m.target, m.stays) for m in moves] == [("b", True)]
