"""The dead-peer boundary: a peer is dead once its keepalive is *older than*
``keepalive_interval x fence_intervals`` (docs/nodes.md), not when it is exactly that old.

The node loops run on fixed clocks, so the keepalive's age is exact.
"""

from __future__ import annotations

import pytest

from pvc.node.loop import NodeLoop
from pvc.state import paths
from pvc.state.states import DaemonState
from tests.helpers import ManualClock, node_config, wait_for

KEEPALIVE_INTERVAL = 0.25
FENCE_INTERVALS = 8
#: keepalive_interval x fence_intervals, written out (both factors are exact in binary).
DEAD_AFTER = 2.0
#: n2's only keepalive is stamped at this time.
SENT_AT = 1000.0
#: One step of the watcher's clock either side of the boundary.
TICK = 0.001


@pytest.fixture
def watcher(zk_hosts, make_store):
    """n1 (clock under the test's control) watching n2, which sent one keepalive at SENT_AT."""
    clocks = {"n1": ManualClock(SENT_AT), "n2": ManualClock(SENT_AT)}
    loops = {}
    for i, name in enumerate(("n1", "n2"), start=1):
        config = node_config(
            name,
            ["n1", "n2"],
            zk_hosts,
            keepalive_interval=KEEPALIVE_INTERVAL,
            fence_intervals=FENCE_INTERVALS,
            session_timeout=1.0,
            index=i,
        )
        assert config.timers.dead_after == DEAD_AFTER
        loops[name] = NodeLoop(config, make_store(timeout=1.0), clock=clocks[name])
        loops[name].start()  # registers, enters run and sends one keepalive (no cycles run)
    n1 = loops["n1"]

    def n2_seen() -> bool:
        node = n1.cache.node("n2")
        return node is not None and node.daemon_state == DaemonState.RUN and node.keepalive is not None

    wait_for(n2_seen)
    assert n1.cache.node("n2").keepalive.timestamp == SENT_AT
    yield n1, clocks["n1"]
    for loop in loops.values():
        loop.shutdown()


def n2_state(n1: NodeLoop) -> str:
    return n1.store.get_text(paths.node_daemon_state("n2"))


@pytest.mark.parametrize("offset", [-TICK, 0.0], ids=["one-tick-before", "exactly-at"])
def test_a_peer_exactly_at_or_before_the_boundary_is_not_dead(watcher, offset):
    n1, clock = watcher
    clock.now = SENT_AT + DEAD_AFTER + offset
    assert n1._mark_dead_peers() == []
    assert n2_state(n1) == DaemonState.RUN


def test_a_peer_one_tick_past_the_boundary_is_dead(watcher):
    n1, clock = watcher
    clock.now = SENT_AT + DEAD_AFTER
    assert n1._mark_dead_peers() == []
    clock.now = SENT_AT + DEAD_AFTER + TICK
    assert n1._mark_dead_peers() == ["marked node n2 dead: no keepalive for 2.0 s"]
    assert n2_state(n1) == DaemonState.DEAD
