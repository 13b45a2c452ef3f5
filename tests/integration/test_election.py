"""Primary-coordinator election with real ZooKeeper sessions."""

import time

from pvc.node.election import HANDOVER_GRACE
from pvc.node.phases import Phase, PrimaryPhases
from pvc.state import paths
from tests.helpers import wait_for
from tests.integration.conftest import expire_session

COORDINATORS = ["n1", "n2", "n3"]


def primaries(store) -> list[str]:
    return [n for n in COORDINATORS if store.get_text(paths.node_coordinator_state(n)) == "primary"]


def one_primary(store) -> str | None:
    found = primaries(store)
    if len(found) == 1 and store.get_text(paths.PRIMARY_NODE) == found[0]:
        return found[0]
    return None


def recorder(events: list[str], name: str) -> PrimaryPhases:
    return PrimaryPhases(
        [
            Phase("ip", lambda: events.append(f"{name} up ip"), lambda: events.append(f"{name} down ip")),
            Phase("api", lambda: events.append(f"{name} up api"), lambda: events.append(f"{name} down api")),
        ]
    )


def start_three(cluster, events):
    return {
        name: cluster(name, COORDINATORS, index=i, phases=recorder(events, name))
        for i, name in enumerate(COORDINATORS, start=1)
    }


def test_exactly_one_primary_is_elected(cluster, store):
    events: list[str] = []
    start_three(cluster, events)
    primary = wait_for(lambda: one_primary(store))
    time.sleep(0.5)  # nothing flaps afterwards
    assert one_primary(store) == primary
    # every node first runs relinquish once at start (cleanup after a crash), then one takes over
    assert [e for e in events if " up " in e] == [f"{primary} up ip", f"{primary} up api"]
    assert {e.split()[0] for e in events if " down " in e} == set(COORDINATORS)
    secondaries = set(COORDINATORS) - {primary}
    assert {store.get_text(paths.node_coordinator_state(n)) for n in secondaries} == {"secondary"}


def test_expired_primary_session_elects_another_within_3s(cluster, store):
    events: list[str] = []
    nodes = start_three(cluster, events)
    old = wait_for(lambda: one_primary(store))
    events.clear()
    expire_session(nodes[old].store)
    expired_at = time.monotonic()
    new = wait_for(lambda: (p := one_primary(store)) and p != old and p, timeout=10)
    assert time.monotonic() - expired_at <= 3.0
    # the old primary stopped acting (phases torn down in reverse), then rejoined
    wait_for(lambda: f"{old} down ip" in events, 3)
    assert events.index(f"{old} down api") < events.index(f"{old} down ip")
    wait_for(lambda: store.get_text(paths.node_coordinator_state(old)) == "secondary", 10)
    wait_for(lambda: store.exists(paths.node_presence(old)), 10)
    assert not nodes[old].loop.role.acting
    assert one_primary(store) == new


def test_writing_the_primary_key_moves_the_role_in_order(cluster, store):
    events: list[str] = []
    start_three(cluster, events)
    old = wait_for(lambda: one_primary(store))
    target = next(n for n in COORDINATORS if n != old)
    events.clear()
    store.set(paths.PRIMARY_NODE, target)
    wait_for(lambda: one_primary(store) == target, 10)
    assert events == [f"{old} down api", f"{old} down ip", f"{target} up ip", f"{target} up api"]
    assert store.get_text(paths.node_coordinator_state(old)) == "secondary"


def test_request_for_a_non_coordinator_is_ignored(cluster, store):
    events: list[str] = []
    start_three(cluster, events)
    primary = wait_for(lambda: one_primary(store))
    store.set(paths.PRIMARY_NODE, "nosuchnode")
    wait_for(lambda: store.get_text(paths.PRIMARY_NODE) == primary, 5)
    assert one_primary(store) == primary


def test_stopping_primary_relinquishes_first(cluster, store):
    events: list[str] = []
    nodes = start_three(cluster, events)
    old = wait_for(lambda: one_primary(store))
    events.clear()
    nodes[old].stop()
    assert events[:2] == [f"{old} down api", f"{old} down ip"]
    new = wait_for(lambda: (p := one_primary(store)) and p != old and p, timeout=5)
    assert store.get_text(paths.node_daemon_state(old)) == "stop"
    assert new != old


def test_contender_left_by_an_interrupted_attempt_is_cleared(zk_hosts, make_store):
    from pvc.node.loop import NodeLoop
    from tests.helpers import node_config

    loop = NodeLoop(node_config("n1", ["n1"], zk_hosts), make_store(timeout=1.0))
    loop.start()
    assert "became primary" in loop.step()
    loop.role.relinquish("none", "relinquishing for the test")
    # an acquire that created its contender znode and then failed leaves this behind
    loop.store.client.create(f"{paths.PRIMARY_LOCK}/x__lock__0000009999", b"n1", ephemeral=True)
    loop.role.lease_changed()
    wait_for(lambda: loop.cache.cluster_config().primary_node == "none", 5)
    assert loop.step()[-1] == "removed a primary lease contender left by an interrupted attempt"
    assert loop.step()[-1] == "became primary"
    loop.shutdown()


def test_first_node_of_a_new_cluster_sees_later_lease_changes(cluster, store):
    # n1 starts alone on an empty cluster, before the lease znode exists
    first = cluster("n1", ["n1", "n2"], index=1)
    wait_for(lambda: one_primary_of(store, ["n1", "n2"]) == "n1")
    cluster("n2", ["n1", "n2"], index=2)
    wait_for(lambda: store.get_text(paths.node_coordinator_state("n2")) == "secondary")
    store.set(paths.PRIMARY_NODE, "n2")
    wait_for(lambda: one_primary_of(store, ["n1", "n2"]) == "n2", 5)
    time.sleep(HANDOVER_GRACE + 0.5)  # n1 must now rely on the lease watch, not on a retry
    moved_back = time.monotonic()
    store.set(paths.PRIMARY_NODE, "n1")
    wait_for(lambda: one_primary_of(store, ["n1", "n2"]) == "n1", 5)
    assert time.monotonic() - moved_back < 2.0  # no fallback to the handover grace
    assert first.loop.role.acting


def one_primary_of(store, names: list[str]) -> str | None:
    found = [n for n in names if store.get_text(paths.node_coordinator_state(n)) == "primary"]
    return found[0] if len(found) == 1 and store.get_text(paths.PRIMARY_NODE) == found[0] else None


def test_keepalives_go_on_during_a_slow_takeover(zk_hosts, make_store):
    """Takeover phases may take longer than peers wait before declaring a node dead (an API
    that is slow to start): the node keeps sending keepalives meanwhile."""
    from pvc.node.loop import NodeLoop
    from tests.helpers import node_config

    versions: list[int] = []
    store = make_store(timeout=1.0)

    def slow() -> None:
        versions.append(store.get_versioned(paths.node_keepalive("n1"))[1])
        time.sleep(8 * 0.25)  # eight keepalive intervals
        versions.append(store.get_versioned(paths.node_keepalive("n1"))[1])

    phases = PrimaryPhases([Phase("slow", slow, lambda: None)])
    loop = NodeLoop(node_config("n1", ["n1"], zk_hosts), store, phases=phases)
    loop.start()
    try:
        assert "became primary" in loop.step()
        assert versions[1] - versions[0] >= 5, versions
    finally:
        loop.shutdown()
