"""Target node selection and the N-1 memory check, from crafted node and VM records."""

import itertools

import pytest

from pvc.cluster.vm.placement import (
    DEFAULT_SELECTOR,
    NodeLoad,
    accepts_vms,
    choose_node,
    effective_selector,
    loads,
    overprovisioned,
)
from pvc.state.records import Keepalive, NodeRecord, NodeStatic
from pvc.state.states import DaemonState, DomainState, Selector, VMState
from pvc.state.vms import VmMeta, VmPlacement, VmRecord

_serial = itertools.count()


def node(
    name: str,
    total: int | None = 16384,
    load: float = 0.0,
    daemon: str = DaemonState.RUN,
    domain: str = DomainState.READY,
) -> NodeRecord:
    keepalive = None
    if total is not None:
        keepalive = Keepalive(timestamp=1000.0, load=load, memory={"total": total, "used": 0, "free": total})
    return NodeRecord(
        name=name,
        static=NodeStatic(name=name),
        daemon_state=daemon,
        domain_state=domain,
        keepalive=keepalive,
        present=True,
    )


def vm(on: str, memory: int, vcpus: int = 1, state: str = VMState.START) -> VmRecord:
    number = next(_serial)
    uuid = f"00000000-0000-4000-8000-{number:012d}"
    return VmRecord(
        uuid=uuid,
        meta=VmMeta(name=f"vm{number}", uuid=uuid, vcpus=vcpus, memory_mib=memory),
        placement=VmPlacement(state=state, node=on),
        xml="",
    )


# Five nodes where every selector prefers a different one:
#         total   load  running VMs (MiB x vCPUs)      stopped    free   unprov  vcpus  vms
#   a    100000   5.0   1000x8, 1000x8                90000x1    98000    8000     16    2
#   b     60000   4.0   20000x6, 20000x6                  -      20000   20000     12    2
#   c     32000   3.0   5000x1 three times                -      17000   17000      3    3
#   d     16000   0.1   2000x4, 2000x4                    -      12000   12000      8    2
#   e      8000   2.0   4000x8                            -       4000    4000      8    1
NODES = [
    node("a", 100000, 5.0),
    node("b", 60000, 4.0),
    node("c", 32000, 3.0),
    node("d", 16000, 0.1),
    node("e", 8000, 2.0),
]
VMS = [
    vm("a", 1000, 8),
    vm("a", 1000, 8, VMState.MIGRATE),  # migrating VMs run: they count as allocated
    vm("a", 90000, 1, VMState.STOP),  # provisioned only
    vm("b", 20000, 6),
    vm("b", 20000, 6, VMState.RESTART),
    vm("c", 5000, 1),
    vm("c", 5000, 1),
    vm("c", 5000, 1, VMState.MIGRATE_LIVE),
    vm("d", 2000, 4),
    vm("d", 2000, 4),
    vm("e", 4000, 8),
    vm("gone", 50000, 50),  # assigned to a node that is not in the list: ignored
]


def test_loads_totals_per_node():
    assert loads(NODES, VMS) == {
        "a": NodeLoad(100000, 2000, 92000, 16, 2, 5.0),
        "b": NodeLoad(60000, 40000, 40000, 12, 2, 4.0),
        "c": NodeLoad(32000, 15000, 15000, 3, 3, 3.0),
        "d": NodeLoad(16000, 4000, 4000, 8, 2, 0.1),
        "e": NodeLoad(8000, 4000, 4000, 8, 1, 2.0),
    }


@pytest.mark.parametrize("state", [s for s in VMState if s not in (VMState.START, VMState.RESTART)])
def test_loads_running_states(state):
    expected_running = state in (VMState.MIGRATE, VMState.MIGRATE_LIVE)
    result = loads([node("n1", 4096)], [vm("n1", 1024, 2, state)])["n1"]
    assert result.memory_provisioned == 1024
    assert (result.memory_allocated, result.vcpus_allocated, result.running_vms) == (
        (1024, 2, 1) if expected_running else (0, 0, 0)
    )


def test_loads_without_keepalive_and_without_vms():
    assert loads([node("n1", None)], []) == {"n1": NodeLoad()}
    assert loads([], [vm("n1", 1024)]) == {}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (Selector.MEM, "a"),
        (Selector.MEMPROV, "b"),
        (Selector.VCPUS, "c"),
        (Selector.LOAD, "d"),
        (Selector.VMS, "e"),
        (Selector.NONE, "a"),  # treated as the default (mem)
        ("bogus", "a"),
    ],
)
def test_each_selector_picks_its_node(selector, expected):
    assert choose_node(NODES, VMS, selector=selector) == expected


def test_selectors_pick_five_different_nodes():
    picks = {s: choose_node(NODES, VMS, selector=s) for s in ("mem", "memprov", "vcpus", "load", "vms")}
    assert sorted(picks.values()) == ["a", "b", "c", "d", "e"]


def test_node_order_does_not_matter():
    for selector in ("mem", "memprov", "vcpus", "load", "vms"):
        expected = choose_node(NODES, VMS, selector=selector)
        assert choose_node(list(reversed(NODES)), list(reversed(VMS)), selector=selector) == expected


def test_choose_node_accepts_generators():
    assert choose_node((n for n in NODES), (v for v in VMS), selector="vcpus") == "c"


@pytest.mark.parametrize(
    ("selector", "limit", "expected"),
    [
        ("mem", ["b", "c"], "b"),
        ("mem", ["e", "d"], "d"),
        ("memprov", ["a", "e"], "a"),
        ("vcpus", ["a", "b"], "b"),
        ("load", ["a", "b", "c"], "c"),
        ("vms", ["a", "b", "d"], "a"),  # three-way tie at 2 running VMs: the first name
        ("mem", ["e"], "e"),
        ("mem", ["e", "nonexistent"], "e"),
    ],
)
def test_node_limit(selector, limit, expected):
    assert choose_node(NODES, VMS, selector=selector, node_limit=limit) == expected


@pytest.mark.parametrize(
    ("selector", "exclude", "expected"),
    [
        ("mem", ["a"], "b"),
        ("mem", ["a", "b"], "c"),
        ("memprov", ["b"], "c"),
        ("vcpus", ["c"], "d"),  # d and e both have 8 vCPUs: d sorts first
        ("load", ["d"], "e"),
        ("vms", ["e"], "a"),
    ],
)
def test_exclude(selector, exclude, expected):
    assert choose_node(NODES, VMS, selector=selector, exclude=exclude) == expected


def test_exclude_wins_over_node_limit():
    assert choose_node(NODES, VMS, selector="mem", node_limit=["a", "c"], exclude=["a"]) == "c"
    assert choose_node(NODES, VMS, selector="mem", node_limit=["a"], exclude=["a"]) is None


NOT_ACCEPTING = [(d, DomainState.READY) for d in DaemonState if d != DaemonState.RUN] + [
    (DaemonState.RUN, d) for d in DomainState if d != DomainState.READY
]


@pytest.mark.parametrize(("daemon", "domain"), NOT_ACCEPTING)
def test_nodes_not_run_and_ready_are_never_chosen(daemon, domain):
    # "big" would win every selector by far if it could take VMs.
    big = node("0big", 10**7, 0.0, daemon, domain)
    assert not accepts_vms(big)
    for selector in ("mem", "memprov", "vcpus", "load", "vms"):
        assert choose_node([big, *NODES], VMS, selector=selector) != "0big"
        assert choose_node([big, *NODES], VMS, selector=selector, node_limit=["0big"]) is None
    assert choose_node([big], [], selector="mem") is None


def test_accepts_vms_only_run_and_ready():
    assert accepts_vms(node("n1"))
    assert accepts_vms(node("n1", None))  # no keepalive yet: still a candidate (with no memory)
    assert choose_node([node("n1", None), node("n2", 1024)], [], selector="mem") == "n2"


@pytest.mark.parametrize("selector", ["mem", "memprov", "vcpus", "load", "vms"])
def test_ties_go_to_the_name_sorting_first(selector):
    twins = [node("hv3", 8192, 1.0), node("hv1", 8192, 1.0), node("hv2", 8192, 1.0)]
    vms = [vm("hv3", 1024, 2), vm("hv1", 1024, 2), vm("hv2", 1024, 2)]
    assert choose_node(twins, vms, selector=selector) == "hv1"
    assert choose_node(twins, vms, selector=selector, exclude=["hv1"]) == "hv2"


def test_tie_break_is_by_name_not_by_score_sign():
    # mem: equal free memory but different totals still ties; the first name wins.
    nodes = [node("z", 8192), node("y", 4096)]
    vms = [vm("z", 4096)]
    assert choose_node(nodes, vms, selector="mem") == "y"
    assert choose_node(nodes, [*vms, vm("y", 1)], selector="mem") == "z"


def test_load_prefers_lower_load_fractions():
    nodes = [node("n1", load=0.51), node("n2", load=0.5), node("n3", load=0.52)]
    assert choose_node(nodes, [], selector="load") == "n2"


def test_vms_counts_only_running_vms():
    nodes = [node("n1"), node("n2")]
    vms = [vm("n1", 512, 1, VMState.STOP), vm("n1", 512, 1, VMState.DISABLE), vm("n2", 512)]
    assert choose_node(nodes, vms, selector="vms") == "n1"
    assert choose_node(nodes, vms, selector="memprov") == "n2"
    assert choose_node(nodes, vms, selector="mem") == "n1"


def test_none_when_nothing_qualifies():
    assert choose_node([], [], selector="mem") is None
    assert choose_node(NODES, VMS, selector="mem", exclude=[n.name for n in NODES]) is None
    assert choose_node(NODES, VMS, selector="mem", node_limit=["nonexistent"]) is None
    dead = [node(n.name, 10000, daemon=DaemonState.DEAD) for n in NODES]
    assert choose_node(dead, VMS, selector="mem") is None


@pytest.mark.parametrize(
    ("vm_selector", "cluster", "expected"),
    [
        ("vcpus", "mem", "vcpus"),
        ("load", "none", "load"),
        ("memprov", "vms", "memprov"),
        ("none", "load", "load"),
        ("", "vms", "vms"),
        ("none", "none", "mem"),
        ("", "none", "mem"),
    ],
)
def test_effective_selector(vm_selector, cluster, expected):
    assert effective_selector(vm_selector, cluster) == expected


def test_effective_selector_default():
    assert DEFAULT_SELECTOR == Selector.MEM
    assert effective_selector("none") == "mem"
    assert effective_selector("vms") == "vms"


# --- overprovisioned -------------------------------------------------------------------------


def test_overprovisioned_fits_exactly():
    nodes = [node("n1", 10000), node("n2", 10000), node("n3", 10000)]
    assert overprovisioned(nodes, [vm("n1", 10000), vm("n2", 5000), vm("n3", 5000)]) is None


def test_overprovisioned_one_mib_too_much():
    nodes = [node("n1", 10000), node("n2", 10000), node("n3", 10000)]
    assert overprovisioned(nodes, [vm("n1", 10000), vm("n2", 5000), vm("n3", 5001)]) == (20001, 20000)


def test_overprovisioned_removes_the_largest_node():
    nodes = [node("n1", 8000), node("n2", 32000), node("n3", 16000)]
    assert overprovisioned(nodes, [vm("n2", 24000)]) is None
    assert overprovisioned(nodes, [vm("n2", 24001)]) == (24001, 24000)


def test_overprovisioned_counts_every_vm_whatever_its_state_or_node():
    nodes = [node("n1", 4000), node("n2", 4000)]
    vms = [
        vm("n1", 1000, state=VMState.STOP),
        vm("n2", 1000, state=VMState.FAIL),
        vm("elsewhere", 1000, state=VMState.DISABLE),
        vm("", 1001, state=VMState.PROVISION),
    ]
    assert overprovisioned(nodes, vms) == (4001, 4000)


@pytest.mark.parametrize("count", [0, 1])
def test_overprovisioned_needs_two_nodes(count):
    nodes = [node(f"n{i}", 1000) for i in range(count)]
    assert overprovisioned(nodes, [vm("n0", 10**6)]) is None


@pytest.mark.parametrize("state", [s for s in DaemonState if s != DaemonState.RUN])
def test_overprovisioned_ignores_nodes_that_do_not_run(state):
    nodes = [node("n1", 10000), node("n2", 10000), node("big", 50000, daemon=state)]
    assert overprovisioned(nodes, [vm("n1", 10000)]) is None
    assert overprovisioned(nodes, [vm("n1", 15000)]) == (15000, 10000)
    # one running node left: nothing to compare against
    assert overprovisioned([nodes[0], nodes[2]], [vm("n1", 10**6)]) is None


def test_overprovisioned_ignores_nodes_without_keepalive():
    nodes = [node("n1", 10000), node("n2", 10000), node("new", None)]
    assert overprovisioned(nodes, [vm("n1", 10001)]) == (10001, 10000)
    assert overprovisioned([node("n1", 10000), node("new", None)], [vm("n1", 10**6)]) is None


def test_overprovisioned_ignores_domain_state():
    # a flushed node still counts: it can take VMs back
    nodes = [node("n1", 10000), node("n2", 10000, domain=DomainState.FLUSHED)]
    assert overprovisioned(nodes, [vm("n1", 10000)]) is None
    assert overprovisioned(nodes, [vm("n1", 10001)]) == (10001, 10000)


def test_overprovisioned_accepts_generators():
    nodes = (n for n in [node("n1", 1000), node("n2", 1000)])
    assert overprovisioned(nodes, (v for v in [vm("n1", 1500)])) == (1500, 1000)
