"""Dead-peer verdicts do not depend on anyone's wall clock.

Three node daemons run in threads on real ZooKeeper: n1 with a true clock, n2 stamping its
keepalives five minutes behind and n3 five minutes ahead. None of them is declared dead
over several ``dead_after`` windows (judged by the stamps, n2 would look dead to n1 at
once, and n1 would look dead to n3). Then n3's daemon hangs (its loop stops, its
ZooKeeper session lives on): it is declared dead after more than ``dead_after`` and within
``dead_after`` plus one keepalive interval of its last keepalive.
"""

from __future__ import annotations

import threading
import time

from pvc.state import paths
from pvc.state.states import DaemonState
from tests.helpers import wait_for

KEEPALIVE_INTERVAL = 0.25
FENCE_INTERVALS = 6
DEAD_AFTER = KEEPALIVE_INTERVAL * FENCE_INTERVALS
SKEW = 300.0
#: Windows of dead_after watched with nobody dead.
WINDOWS = 4
#: Allowance for ZooKeeper's notification and thread scheduling on a busy machine.
SLACK = 0.3

NAMES = ("n1", "n2", "n3")


class Hang:
    """Wraps a loop's keepalive: sends normally until :meth:`start`, then the next keepalive
    blocks (the daemon hangs) until :meth:`release`. ``last_sent`` is the monotonic time
    the last keepalive was written."""

    def __init__(self, loop) -> None:
        self._send = loop._keepalive
        self._hang = threading.Event()
        self._released = threading.Event()
        self.last_sent = time.monotonic()
        loop._keepalive = self

    def __call__(self) -> None:
        if self._hang.is_set():
            self._released.wait(30)
            return
        self._send()
        self.last_sent = time.monotonic()

    def start(self) -> None:
        self._hang.set()

    def release(self) -> None:
        self._released.set()


def test_skewed_clocks_never_kill_a_node_and_a_hung_daemon_dies_on_time(cluster):
    clocks = {"n1": time.time, "n2": lambda: time.time() - SKEW, "n3": lambda: time.time() + SKEW}
    running = {
        name: cluster(
            name,
            list(NAMES),
            index=i,
            keepalive_interval=KEEPALIVE_INTERVAL,
            fence_intervals=FENCE_INTERVALS,
            clock=clocks[name],
        )
        for i, name in enumerate(NAMES, start=1)
    }
    store = running["n1"].store
    assert running["n1"].loop.config.timers.dead_after == DEAD_AFTER

    def states() -> dict[str, str]:
        return {name: store.get_text(paths.node_daemon_state(name)) for name in NAMES}

    wait_for(lambda: set(states().values()) == {DaemonState.RUN})
    stamps = {name: running["n1"].loop.cache.keepalive(name) for name in NAMES}
    assert stamps["n2"].timestamp < time.time() - SKEW + 5
    assert stamps["n3"].timestamp > time.time() + SKEW - 5

    # Several dead_after windows: every node stays in run all along.
    hang = Hang(running["n3"].loop)
    watch_until = time.monotonic() + WINDOWS * DEAD_AFTER
    seen = []
    while time.monotonic() < watch_until:
        seen.append(states())
        time.sleep(0.05)
    assert all(set(sample.values()) == {DaemonState.RUN} for sample in seen), seen
    assert all(running[name].loop.keepalives > WINDOWS * FENCE_INTERVALS / 2 for name in NAMES)

    # n3 hangs: its next keepalive never goes out.
    hang.start()
    try:
        wait_for(lambda: states()["n3"] == DaemonState.DEAD, timeout=DEAD_AFTER * 4, interval=0.01)
        declared_after = time.monotonic() - hang.last_sent
        assert DEAD_AFTER < declared_after <= DEAD_AFTER + KEEPALIVE_INTERVAL + SLACK, declared_after
        assert states()["n1"] == states()["n2"] == DaemonState.RUN
    finally:
        hang.release()
