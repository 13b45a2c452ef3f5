"""Judging peers dead on the judge's own monotonic clock (pvc.node.peers.PeerWatch).

A peer's silence is measured from when the judge last saw its keepalive znode change (a
new zxid), never from the timestamp the peer wrote into the keepalive.
"""

from __future__ import annotations

import pytest

from pvc.node.peers import PeerWatch
from pvc.state.records import Keepalive, NodeRecord, NodeStatic
from tests.helpers import ManualClock

DEAD_AFTER = 30.0


def record(name: str, state: str = "run", zxid: int = 1, stamp: float | None = 0.0) -> NodeRecord:
    """A peer whose keepalive znode is at ``zxid``, stamped ``stamp`` by the peer's clock
    (None: registered, never sent a keepalive)."""
    return NodeRecord(
        name=name,
        static=NodeStatic(name=name, registered=0.0),
        daemon_state=state,
        keepalive=Keepalive(timestamp=stamp) if stamp is not None else None,
        keepalive_zxid=zxid,
    )


def names(overdue: list[tuple[NodeRecord, float]]) -> list[str]:
    return [node.name for node, _ in overdue]


@pytest.mark.parametrize(
    ("silence", "dead"), [(29.999, False), (30.0, False), (30.001, True)], ids=["before", "at", "after"]
)
def test_the_boundary_is_strictly_more_than_dead_after_of_silence(silence, dead):
    clock = ManualClock(500.0)
    watch = PeerWatch(clock)
    assert watch.overdue([record("peer")], "me", DEAD_AFTER) == []  # first sight: the baseline
    clock.now = 500.0 + silence
    overdue = watch.overdue([record("peer")], "me", DEAD_AFTER)
    assert bool(overdue) is dead
    if dead:
        assert overdue[0][1] == pytest.approx(silence)


def test_only_running_peers_other_than_me_are_judged():
    clock = ManualClock(0.0)
    watch = PeerWatch(clock)
    peers = [record("me"), record("old"), record("stopped", "stop"), record("already", "dead")]
    watch.overdue(peers, "me", DEAD_AFTER)
    clock.now = 100.0
    assert names(watch.overdue(peers, "me", DEAD_AFTER)) == ["old"]


@pytest.mark.parametrize("stamp", [-1e9, 0.0, 1e9], ids=["far-past", "epoch", "far-future"])
def test_the_peers_own_timestamp_decides_nothing(stamp):
    """Whatever time the peer wrote, only the judge's observation counts."""
    clock = ManualClock(1000.0)
    watch = PeerWatch(clock)
    assert watch.overdue([record("peer", stamp=stamp)], "me", DEAD_AFTER) == []
    clock.now = 1000.0 + DEAD_AFTER
    assert watch.overdue([record("peer", stamp=stamp)], "me", DEAD_AFTER) == []
    clock.now = 1000.0 + DEAD_AFTER + 0.5
    assert names(watch.overdue([record("peer", stamp=stamp)], "me", DEAD_AFTER)) == ["peer"]


def test_a_changed_keepalive_restarts_the_timer():
    clock = ManualClock(0.0)
    watch = PeerWatch(clock)
    watch.overdue([record("peer", zxid=10)], "me", DEAD_AFTER)
    clock.now = 25.0
    assert watch.overdue([record("peer", zxid=11)], "me", DEAD_AFTER) == []  # seen changing at 25
    clock.now = 50.0
    assert watch.overdue([record("peer", zxid=11)], "me", DEAD_AFTER) == []  # 25 s silent, not 50
    clock.now = 55.0
    assert watch.overdue([record("peer", zxid=11)], "me", DEAD_AFTER) == []  # exactly 30 s
    clock.now = 55.5
    assert [(n.name, s) for n, s in watch.overdue([record("peer", zxid=11)], "me", DEAD_AFTER)] == [
        ("peer", 30.5)
    ]


def test_a_change_reported_between_verdicts_counts_from_when_it_was_seen():
    """``saw`` (called when the state cache reports a change) times the change, not the next check."""
    clock = ManualClock(0.0)
    watch = PeerWatch(clock)
    watch.overdue([record("peer", zxid=10)], "me", DEAD_AFTER)
    clock.now = 20.0
    watch.saw("peer", 11)
    clock.now = 40.0
    watch.saw("peer", 11)  # the same zxid again is no news
    clock.now = 50.0
    assert watch.overdue([record("peer", zxid=11)], "me", DEAD_AFTER) == []
    clock.now = 50.5
    assert names(watch.overdue([record("peer", zxid=11)], "me", DEAD_AFTER)) == ["peer"]


def test_a_fresh_judge_waits_a_full_dead_after_even_for_long_silent_peers():
    """Just started: whatever happened before, no peer is dead before dead_after has passed."""
    clock = ManualClock(10_000.0)
    watch = PeerWatch(clock)
    silent = [record("a", zxid=3, stamp=0.0), record("b", zxid=4, stamp=None)]
    assert watch.overdue(silent, "me", DEAD_AFTER) == []
    clock.now = 10_000.0 + DEAD_AFTER
    assert watch.overdue(silent, "me", DEAD_AFTER) == []
    clock.now = 10_000.0 + DEAD_AFTER + 1.0
    assert names(watch.overdue(silent, "me", DEAD_AFTER)) == ["a", "b"]


def test_forgetting_all_baselines_every_peer_again():
    """After a reconnection the judge starts over: the silence seen before counts for nothing."""
    clock = ManualClock(0.0)
    watch = PeerWatch(clock)
    watch.overdue([record("peer")], "me", DEAD_AFTER)
    clock.now = 29.0
    watch.forget_all()
    clock.now = 31.0  # past dead_after since the first sight, but the judge forgot at 29
    assert watch.overdue([record("peer")], "me", DEAD_AFTER) == []
    clock.now = 31.0 + DEAD_AFTER
    assert watch.overdue([record("peer")], "me", DEAD_AFTER) == []
    clock.now = 31.0 + DEAD_AFTER + 0.001
    assert names(watch.overdue([record("peer")], "me", DEAD_AFTER)) == ["peer"]


def test_a_registered_peer_without_keepalives_is_measured_from_when_its_registration_was_seen():
    clock = ManualClock(0.0)
    watch = PeerWatch(clock)
    clock.now = 7.0
    watch.saw("new", 42)  # its keepalive znode appears (empty) when it registers
    clock.now = 7.0 + DEAD_AFTER
    assert watch.overdue([record("new", zxid=42, stamp=None)], "me", DEAD_AFTER) == []
    clock.now = 7.0 + DEAD_AFTER + 0.001
    assert names(watch.overdue([record("new", zxid=42, stamp=None)], "me", DEAD_AFTER)) == ["new"]


def test_a_peer_that_leaves_run_is_measured_afresh_when_it_returns():
    clock = ManualClock(0.0)
    watch = PeerWatch(clock)
    watch.overdue([record("peer")], "me", DEAD_AFTER)
    clock.now = 20.0
    watch.overdue([record("peer", "stop")], "me", DEAD_AFTER)
    clock.now = 40.0  # back in run with the same keepalive znode: its timer starts now
    assert watch.overdue([record("peer")], "me", DEAD_AFTER) == []
    clock.now = 70.0
    assert watch.overdue([record("peer")], "me", DEAD_AFTER) == []
    clock.now = 70.001
    assert names(watch.overdue([record("peer")], "me", DEAD_AFTER)) == ["peer"]


def test_keepalive_owner_names_the_node_only_for_its_keepalive_znode():
    from pvc.state import nodes, paths

    assert nodes.keepalive_owner(paths.node_keepalive("hv1")) == "hv1"
    assert nodes.keepalive_owner(paths.node_daemon_state("hv1")) is None
    assert nodes.keepalive_owner(paths.node("hv1")) is None
    assert nodes.keepalive_owner(paths.NODES + "/keepalive") is None


def test_progress_is_a_peer_keepalive_seen_to_advance_not_a_first_sight():
    clock = ManualClock(10.0)
    watch = PeerWatch(clock)
    watch.saw("peer", 5)  # first sight (a start or a reconnection): no evidence yet
    assert watch.progress_since(0.0) is None
    clock.now = 11.0
    watch.saw("peer", 5)  # unchanged
    assert watch.progress_since(0.0) is None
    clock.now = 12.0
    watch.saw("peer", 6)
    clock.now = 13.0
    watch.saw("peer", 7)
    assert watch.progress_since(0.0) == 12.0
    assert watch.progress_since(12.0) == 13.0
    assert watch.progress_since(13.0) is None


def test_progress_is_kept_by_age_so_many_peers_cannot_push_it_out():
    clock = ManualClock(100.0)
    watch = PeerWatch(clock)
    peers = [f"hv{i}" for i in range(200)]
    for name in peers:
        watch.saw(name, 1)
    clock.now = 101.0
    for name in peers:  # 200 advances within one keepalive interval
        watch.saw(name, 2)
    for step in range(1, 20):
        clock.now = 101.0 + step
        for name in peers:
            watch.saw(name, 2 + step)
    assert watch.progress_since(100.5) == 101.0
    clock.now = 101.0 + 700.0
    watch.saw("hv0", 99)
    assert watch.progress_since(100.5) == 801.0  # older than the horizon: forgotten
