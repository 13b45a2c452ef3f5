"""The dead-peer boundary: a peer is dead once its keepalive has not been seen changing for
*more than* ``keepalive_interval x fence_intervals`` (docs/nodes.md), not when exactly that
long has passed.

The watcher's monotonic clock is under the test's control, so the silence is exact. The
keepalive timestamps the peer writes (on its own wall clock) play no part in the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pvc.node.loop import NodeLoop
from pvc.state import paths
from pvc.state.states import DaemonState
from pvc.state.store import CONNECTED
from tests.helpers import ManualClock, node_config, wait_for

KEEPALIVE_INTERVAL = 0.25
FENCE_INTERVALS = 8
#: keepalive_interval x fence_intervals, written out (both factors are exact in binary).
DEAD_AFTER = 2.0
#: n2 stamps its only keepalive with this wall-clock time...
SENT_AT = 1000.0
#: ...and n1 (whose monotonic clock reads this) has seen it by then.
SEEN_AT = 50.0
#: One step of the watcher's clock either side of the boundary.
TICK = 0.001


@dataclass
class Watch:
    """n1 watching n2; ``n2_seen`` tells whether n1's cache shows n2's latest keepalive."""

    n1: NodeLoop
    n2: NodeLoop
    monotonic: ManualClock
    n2_seen: Callable[[], bool]


@pytest.fixture
def watcher(zk_hosts, make_store):
    """n1 (monotonic clock under the test's control) watching n2, which sent one keepalive."""
    monotonic = ManualClock(SEEN_AT)
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
        extra = {"monotonic": monotonic} if name == "n1" else {}
        loops[name] = NodeLoop(config, make_store(timeout=1.0), clock=ManualClock(SENT_AT), **extra)
        loops[name].start()  # registers, enters run and sends one keepalive (no cycles run)
    n1 = loops["n1"]
    keepalive = paths.node_keepalive("n2")

    def n2_seen() -> bool:
        node = n1.cache.node("n2")
        current = n1.store.get_versioned(keepalive)[1]
        return node is not None and node.daemon_state == DaemonState.RUN and node.keepalive_version == current

    wait_for(n2_seen)
    assert n1.cache.node("n2").keepalive.timestamp == SENT_AT
    assert n1.peer_watch.overdue(n1.cache.nodes(), "n1", DEAD_AFTER) == []  # n1 has looked at SEEN_AT
    yield Watch(n1, loops["n2"], monotonic, n2_seen)
    for loop in loops.values():
        loop.shutdown()


def n2_state(n1: NodeLoop) -> str:
    return n1.store.get_text(paths.node_daemon_state("n2"))


@pytest.mark.parametrize("offset", [-TICK, 0.0], ids=["one-tick-before", "exactly-at"])
def test_a_peer_exactly_at_or_before_the_boundary_is_not_dead(watcher, offset):
    n1, monotonic = watcher.n1, watcher.monotonic
    monotonic.now = SEEN_AT + DEAD_AFTER + offset
    assert n1.fencing.mark_dead_peers() == []
    assert n2_state(n1) == DaemonState.RUN


def test_a_peer_one_tick_past_the_boundary_is_dead(watcher):
    n1, monotonic = watcher.n1, watcher.monotonic
    monotonic.now = SEEN_AT + DEAD_AFTER
    assert n1.fencing.mark_dead_peers() == []
    monotonic.now = SEEN_AT + DEAD_AFTER + TICK
    assert n1.fencing.mark_dead_peers() == ["marked node n2 dead: no keepalive seen for 2.0 s"]
    assert n2_state(n1) == DaemonState.DEAD


def test_a_keepalive_seen_before_the_boundary_restarts_the_count(watcher):
    n1, monotonic = watcher.n1, watcher.monotonic
    renewed_at = SEEN_AT + DEAD_AFTER - TICK
    monotonic.now = renewed_at
    watcher.n2._keepalive()  # n2 sends one more keepalive, stamped SENT_AT again
    wait_for(watcher.n2_seen)
    assert n1.fencing.mark_dead_peers() == []
    monotonic.now = SEEN_AT + DEAD_AFTER + TICK  # past the first keepalive's boundary
    assert n1.fencing.mark_dead_peers() == []
    monotonic.now = renewed_at + DEAD_AFTER
    assert n1.fencing.mark_dead_peers() == []
    monotonic.now = renewed_at + DEAD_AFTER + TICK
    assert n1.fencing.mark_dead_peers() == ["marked node n2 dead: no keepalive seen for 2.0 s"]


def test_after_a_reconnection_the_watcher_waits_a_full_dead_after_again(watcher):
    """Keepalives may have been missed while disconnected: the count starts over, from the
    watcher's first look after the reconnection."""
    n1, monotonic = watcher.n1, watcher.monotonic
    reconnected_at = SEEN_AT + DEAD_AFTER - TICK
    monotonic.now = reconnected_at
    n1._on_connection(CONNECTED)
    assert n1.fencing.mark_dead_peers() == []
    monotonic.now = SEEN_AT + DEAD_AFTER + TICK
    assert n1.fencing.mark_dead_peers() == []
    monotonic.now = reconnected_at + DEAD_AFTER
    assert n1.fencing.mark_dead_peers() == []
    assert n2_state(n1) == DaemonState.RUN
    monotonic.now = reconnected_at + DEAD_AFTER + TICK
    assert n1.fencing.mark_dead_peers() == ["marked node n2 dead: no keepalive seen for 2.0 s"]
