"""Every compare-and-set write against a competing writer, on a real ZooKeeper.

Each test lets one client read, then has a second client (its own ZooKeeper session) write
the same record just before the first one's write goes out, and checks that the first
client noticed: it re-read and kept the other change (the retrying writes), or refused
with a clear error and wrote nothing (the one-shot ones). Without the version check the
first write would silently undo the second; each test fails then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.vm import actions as vm_actions
from pvc.cluster.vm import define as vm_define
from pvc.cluster.vm import meta as vm_meta
from pvc.domain_xml import build as domain_xml
from pvc.domain_xml.policy import XmlPolicy
from pvc.node.flush import FlushDriver
from pvc.state import nodes, paths
from pvc.state.cache import ClusterCache
from pvc.state.errors import ConflictError
from pvc.state.records import NodeStatic, decode_json
from pvc.state.schema import ensure_schema
from pvc.state.states import DaemonState, DomainState, NodeMode, VMState
from pvc.state.store import Store
from pvc.state.vms import VmMeta, VmPlacement, update_placement
from pvc.tasks import control, transitions
from pvc.tasks.builtin import sleep
from pvc.tasks.records import TaskState
from tests.helpers import ManualClock, node_config, wait_for

NODES = ("hv1", "hv2")


class Interference:
    """Runs ``competing`` once, right before ``store``'s next commit (after its read).

    ``commits`` counts the commits ``store`` attempted, so a test can see a retry.
    """

    def __init__(
        self, store: Store, competing: Callable[[], object], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.competing = competing
        self.ran = False
        self.commits = 0
        original = store.commit

        def commit(txn):
            self.commits += 1
            if not self.ran:
                self.ran = True
                self.competing()
            return original(txn)

        monkeypatch.setattr(store, "commit", commit)


@pytest.fixture
def clusters(make_store):
    """Two clients of one cluster (two sessions, two caches) with nodes hv1, hv2 in run."""
    made = []
    for _ in range(2):
        store = make_store()
        ensure_schema(store)
        cache = ClusterCache(store, API_ROOTS)
        cache.start()
        assert cache.wait_ready(10)
        made.append(Cluster(store, cache))
    first = made[0].store
    for name in NODES:
        nodes.register(first, NodeStatic(name=name, mode=NodeMode.COORDINATOR))
        first.set(paths.node_daemon_state(name), DaemonState.RUN.value)
    for cluster in made:
        wait_for(lambda c=cluster: [n.daemon_state for n in c.cache.nodes()] == ["run"] * len(NODES))
    yield made
    for cluster in made:
        cluster.cache.close()


def new_vm(cluster: Cluster, name: str = "web1", node: str = "hv1") -> str:
    """Define a stopped VM on ``node``, as the API does; returns its UUID."""
    xml = domain_xml.build(domain_xml.DomainSpec(name=name, memory_mib=64))
    uuid, _ = vm_define.define(cluster, xml, node=node, policy=XmlPolicy())
    return uuid


def placement(store: Store, uuid: str) -> VmPlacement:
    found = VmPlacement.from_bytes(store.get(paths.domain_state(uuid)))
    assert found is not None
    return found


def meta_of(store: Store, uuid: str) -> VmMeta:
    found = VmMeta.from_mapping(decode_json(store.get(paths.domain(uuid))))
    assert found is not None
    return found


def wait_cached(cluster: Cluster, uuid: str, check: Callable[[object], bool]) -> None:
    wait_for(lambda: (vm := cluster.cache.vm(uuid)) is not None and check(vm))


# -- VM placement ---------------------------------------------------------------------------


def test_a_migrate_request_keeps_the_node_daemons_concurrent_write(clusters, monkeypatch):
    api, daemon = clusters
    uuid = new_vm(api)
    wait_cached(daemon, uuid, lambda vm: True)

    def daemon_starts_it() -> None:  # the node daemon reports the VM running, as it does after a start
        update_placement(daemon.store, uuid, lambda p: replace(p, state=VMState.START, running_on="hv1"))

    race = Interference(api.store, daemon_starts_it, monkeypatch)
    vm_actions.request_node(api, uuid, "migrate", node="hv2")
    assert race.ran and race.commits == 2  # the first write lost, the retry re-read
    final = placement(api.store, uuid)
    assert (final.node, final.last_node, final.running_on) == ("hv2", "hv1", "hv1")
    assert final.state == VMState.MIGRATE  # decided again on the fresh record: it runs now


def test_a_node_daemons_placement_write_keeps_a_concurrent_migrate_request(clusters, monkeypatch):
    api, daemon = clusters
    uuid = new_vm(api)
    wait_cached(api, uuid, lambda vm: True)
    race = Interference(
        daemon.store, lambda: vm_actions.request_node(api, uuid, "move", node="hv2"), monkeypatch
    )
    vm_actions.change_placement(daemon, uuid, lambda p: replace(p, running_on="hv1", failed_reason=""))
    assert race.ran and race.commits == 2
    final = placement(api.store, uuid)
    assert (final.node, final.running_on) == ("hv2", "hv1")


def test_a_placement_change_that_keeps_losing_gives_a_clear_error(clusters, monkeypatch):
    api, daemon = clusters
    uuid = new_vm(api)
    count = iter(range(1000))

    def always_compete(txn, original=api.store.commit):
        update_placement(daemon.store, uuid, lambda p: replace(p, restarts=next(count)))
        return original(txn)

    monkeypatch.setattr(api.store, "commit", always_compete)
    with pytest.raises(ConflictError, match="kept changing; try again"):
        update_placement(api.store, uuid, lambda p: replace(p, state=VMState.START))
    assert placement(daemon.store, uuid).state == VMState.STOP  # never written over the others


# -- VM metadata and definition ---------------------------------------------------------------


def test_a_tag_change_keeps_a_concurrent_placement_rule_change(clusters, monkeypatch):
    api, other = clusters
    uuid = new_vm(api)
    wait_cached(other, uuid, lambda vm: True)
    race = Interference(
        api.store, lambda: vm_meta.set_meta(other, uuid, limit="hv1,hv2", selector="vcpus"), monkeypatch
    )
    vm_meta.change_tag(api, uuid, "add", "blue", False)
    assert race.ran and race.commits == 2
    final = meta_of(api.store, uuid)
    assert [t["name"] for t in final.tags] == ["blue"]
    assert (final.node_limit, final.node_selector) == (["hv1", "hv2"], "vcpus")


def test_modify_refuses_when_the_vm_changed_after_it_was_read(clusters, monkeypatch):
    api, other = clusters
    uuid = new_vm(api)
    wait_cached(other, uuid, lambda vm: True)
    bigger = domain_xml.build(domain_xml.DomainSpec(name="web1", memory_mib=128, uuid=uuid))
    race = Interference(api.store, lambda: vm_meta.change_tag(other, uuid, "add", "red", False), monkeypatch)
    with pytest.raises(ClusterError, match="changed while it was being modified; try again"):
        vm_define.modify(api, uuid, bigger, policy=XmlPolicy())
    assert race.ran
    final = meta_of(api.store, uuid)
    assert [t["name"] for t in final.tags] == ["red"] and final.memory_mib != 128
    assert "128" not in api.store.get_text(paths.domain_xml(uuid))  # the XML was not replaced either


def test_rename_refuses_when_the_vm_changed_after_it_was_read(clusters, monkeypatch):
    api, other = clusters
    uuid = new_vm(api)
    wait_cached(other, uuid, lambda vm: True)
    race = Interference(api.store, lambda: vm_meta.change_tag(other, uuid, "add", "red", False), monkeypatch)
    with pytest.raises(ClusterError, match="changed while it was being renamed; try again"):
        vm_define.rename(api, uuid, "web2")
    assert race.ran
    final = meta_of(api.store, uuid)
    assert final.name == "web1" and [t["name"] for t in final.tags] == ["red"]
    assert api.store.get_text(paths.domain_name("web1")) == uuid
    assert not api.store.exists(paths.domain_name("web2"))


# -- tasks -------------------------------------------------------------------------------------


def running_task(store: Store) -> str:
    record = control.submit(store, sleep, "hv1", {"seconds": 1})
    control.update(store, record.id, lambda r: transitions.claim(r, "hv1", 1.0))
    return record.id


def task(store: Store, task_id: str):
    found = control.read(store, task_id)
    assert found is not None
    return found[0]


def test_a_cancel_of_a_pending_task_claimed_meanwhile_flags_the_running_task(clusters, monkeypatch):
    api, worker = clusters
    record = control.submit(api.store, sleep, "hv1", {"seconds": 1})
    race = Interference(
        api.store,
        lambda: control.update(worker.store, record.id, lambda r: transitions.claim(r, "hv1", 1.0)),
        monkeypatch,
    )
    after = control.request_cancel(api.store, record.id)
    assert race.ran and race.commits == 2
    assert after.state == TaskState.RUNNING and after.cancel_requested  # the worker sees the flag
    stored = task(worker.store, record.id)
    assert stored.state == TaskState.RUNNING and stored.worker == "hv1" and stored.cancel_requested


def test_a_cancel_racing_the_tasks_success_leaves_the_success(clusters, monkeypatch):
    api, worker = clusters
    task_id = running_task(api.store)
    finish = lambda: control.update(  # noqa: E731
        worker.store, task_id, lambda r: transitions.succeed(r, "done", 2.0, current=1, total=1)
    )
    race = Interference(api.store, finish, monkeypatch)
    after = control.request_cancel(api.store, task_id)
    assert race.ran
    assert after.state == TaskState.SUCCESS and not after.cancel_requested
    assert task(worker.store, task_id).result == "done"


def test_a_workers_progress_keeps_a_concurrent_cancel_request(clusters, monkeypatch):
    api, worker = clusters
    task_id = running_task(api.store)
    race = Interference(worker.store, lambda: control.request_cancel(api.store, task_id), monkeypatch)
    control.update(worker.store, task_id, lambda r: transitions.progress(r, 3, 10, "copying"))
    assert race.ran and race.commits == 2
    stored = task(api.store, task_id)
    assert stored.cancel_requested and (stored.current, stored.total, stored.status) == (3, 10, "copying")


def test_the_cancel_api_call_keeps_a_concurrent_progress_write(clusters, monkeypatch):
    api, worker = clusters
    task_id = running_task(api.store)
    race = Interference(
        api.store,
        lambda: control.update(worker.store, task_id, lambda r: transitions.progress(r, 5, 10, "halfway")),
        monkeypatch,
    )
    wait_for(lambda: api.cache.data(paths.task(task_id)) is not None)
    assert "requested (state RUNNING)" in task_actions.cancel_task(api, task_id)
    assert race.ran and race.commits == 2
    stored = task(api.store, task_id)
    assert stored.cancel_requested and (stored.current, stored.status) == (5, "halfway")


# -- node states -----------------------------------------------------------------------------


def test_a_flush_finishing_as_ready_arrives_leaves_the_ready_request(clusters, monkeypatch):
    api, daemon = clusters
    api.settle(nodes.request_domain_state(api.store, "hv1", DomainState.FLUSH))
    wait_for(lambda: daemon.cache.domain_state("hv1")[0] == DomainState.FLUSH)
    driver = FlushDriver(daemon, "hv1", "mem")
    race = Interference(
        daemon.store,
        lambda: nodes.request_domain_state(api.store, "hv1", DomainState.UNFLUSH),
        monkeypatch,
    )
    assert driver.step({}, lambda uuid: False) is None  # nothing finished: the request changed
    assert race.ran
    assert daemon.store.get_text(paths.node_domain_state("hv1")) == DomainState.UNFLUSH
    # The next step sees the ready request and finishes that instead.
    wait_for(lambda: daemon.cache.domain_state("hv1")[0] == DomainState.UNFLUSH)
    assert driver.step({}, lambda uuid: False) == "domain state unflush -> ready"
    assert daemon.store.get_text(paths.node_domain_state("hv1")) == DomainState.READY


def test_a_node_without_a_hypervisor_does_not_finish_a_flush_over_a_ready_request(
    zk_hosts, make_store, monkeypatch
):
    from pvc.node.loop import NodeLoop

    loop = NodeLoop(node_config("hv1", ["hv1"], zk_hosts), make_store())
    loop.start()
    try:
        other = make_store()
        other.set(paths.node_domain_state("hv1"), DomainState.FLUSH.value)
        wait_for(lambda: loop.cache.domain_state("hv1")[0] == DomainState.FLUSH)
        race = Interference(
            loop.store,
            lambda: other.set(paths.node_domain_state("hv1"), DomainState.UNFLUSH.value),
            monkeypatch,
        )
        with pytest.raises(ConflictError, match="changed while finishing flush"):
            loop._reconcile_domain_state()  # the cycle logs it and looks again
        assert race.ran
        assert other.get_text(paths.node_domain_state("hv1")) == DomainState.UNFLUSH
        wait_for(lambda: loop.cache.domain_state("hv1")[0] == DomainState.UNFLUSH)
        assert loop._reconcile_domain_state() == ["domain state unflush -> ready"]
    finally:
        loop.shutdown()


# -- dead peers ------------------------------------------------------------------------------


@pytest.fixture
def peers(zk_hosts, make_store):
    """Two node daemons' loops, n1 and n2, both in run; n1 has seen n2's keepalive, then its
    monotonic clock moves an hour on, so that it finds n2 overdue on its next look."""
    from pvc.node.loop import NodeLoop

    monotonic = ManualClock(0.0)
    loops = {}
    for i, name in enumerate(("n1", "n2"), start=1):
        config = node_config(
            name, ["n1", "n2"], zk_hosts, keepalive_interval=0.1, fence_intervals=12, index=i
        )
        extra = {"monotonic": monotonic} if name == "n1" else {}
        loops[name] = NodeLoop(config, make_store(timeout=1.0), **extra)
        loops[name].start()
    n1 = loops["n1"]
    keepalive = paths.node_keepalive("n2")
    wait_for(lambda: [n.daemon_state for n in n1.cache.nodes()] == ["run", "run"])
    wait_for(lambda: n1.cache.version(keepalive) == n1.store.get_versioned(keepalive)[1])
    assert n1.peer_watch.overdue(n1.cache.nodes(), "n1", n1.config.timers.dead_after) == []
    monotonic.now = 3600.0
    yield loops
    for loop in loops.values():
        loop.shutdown()


def test_a_peer_whose_keepalive_arrives_while_it_is_being_marked_dead_stays_in_run(peers, monkeypatch):
    n1, n2 = peers["n1"], peers["n2"]
    race = Interference(n1.store, n2._keepalive, monkeypatch)  # n2's next keepalive
    assert n1.fencing.mark_dead_peers() == []
    assert race.ran
    assert n1.store.get_text(paths.node_daemon_state("n2")) == DaemonState.RUN


def test_a_peer_that_restarts_while_it_is_being_marked_dead_stays_in_run(peers, monkeypatch):
    n1, n2 = peers["n1"], peers["n2"]

    def restarts() -> None:  # a restarted daemon registers again and enters run
        n2._reregister()

    race = Interference(n1.store, restarts, monkeypatch)
    assert n1.fencing.mark_dead_peers() == []
    assert race.ran
    assert n1.store.get_text(paths.node_daemon_state("n2")) == DaemonState.RUN


def test_a_silent_peer_is_marked_dead_once_even_by_two_watchers(peers, make_store, monkeypatch):
    n1 = peers["n1"]
    competitor = make_store()
    record = n1.cache.node("n2")

    def another_peer_marks_it() -> None:
        assert nodes.mark_dead(competitor, record)

    race = Interference(n1.store, another_peer_marks_it, monkeypatch)
    assert n1.fencing.mark_dead_peers() == []  # the other peer got there first; one write only
    assert race.ran
    assert n1.store.get_text(paths.node_daemon_state("n2")) == DaemonState.DEAD
