"""Watching peers: which nodes have stopped sending keepalives.

A peer's keepalive carries the wall-clock time its own host stamped on it, and that clock
may be wrong by any amount. Deciding on it would let a healthy node whose clock runs
behind be declared dead (and fenced). So a judge never reads that timestamp: it measures
a peer's silence on its *own* monotonic clock, from the moment it last saw the peer's
keepalive znode change (ZooKeeper's modification zxid of that znode tells it whether it
changed; a zxid is assigned by ZooKeeper, so no node's clock enters it).

A judge that has not watched a peer yet (it just started, reconnected or lost track)
baselines the peer when it first sees it and waits a full ``dead_after`` from then; a
peer that never sent a keepalive is therefore measured from when the judge first saw its
registration.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from pvc.state.records import NodeRecord
from pvc.state.states import DaemonState

#: How far back (seconds) :meth:`PeerWatch.progress_since` looks, and the finest distinction
#: it keeps between two advances: kept by age, not count, so that many peers advancing at
#: once cannot push the moment a question is about out of the record.
PROGRESS_HORIZON = 600.0
PROGRESS_RESOLUTION = 0.05


class PeerWatch:
    """When this node last saw each peer's keepalive znode change, on a monotonic clock.

    :meth:`saw` may be called from any thread (e.g. on each change the state cache reports);
    :meth:`overdue` is the verdict, asked by the node loop.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: peer name -> (keepalive zxid last seen, local monotonic time it was first seen).
        self._seen: dict[str, tuple[int, float]] = {}
        #: When peers' keepalives were last seen to advance (newest last).
        self._progress: deque[float] = deque()

    def saw(self, name: str, zxid: int) -> None:
        """Note that ``name``'s keepalive znode is at ``zxid``; a new zxid restarts its timer."""
        with self._lock:
            now = self._clock()
            seen = self._seen.get(name)
            if seen is not None and seen[0] != zxid:
                self._advanced(now)
            self._note(name, zxid, now)

    def _advanced(self, now: float) -> None:
        """Record a peer's advance at ``now`` (caller holds the lock). An advance within the
        resolution of the last one recorded adds nothing, which can only make an answer of
        :meth:`progress_since` later (never earlier) than the truth."""
        if not self._progress or now - self._progress[-1] >= PROGRESS_RESOLUTION:
            self._progress.append(now)
        while self._progress and now - self._progress[0] > PROGRESS_HORIZON:
            self._progress.popleft()

    def progress_since(self, since: float) -> float | None:
        """When a peer's keepalive was first seen to advance after ``since`` (monotonic), or
        None: evidence that ZooKeeper confirms the peers' writes."""
        with self._lock:
            later = [moment for moment in self._progress if moment > since]
        return min(later) if later else None

    def _note(self, name: str, zxid: int, now: float) -> float:
        """Record ``zxid`` for ``name`` (caller holds the lock); returns when it was first seen."""
        seen = self._seen.get(name)
        if seen is None or seen[0] != zxid:
            seen = self._seen[name] = (zxid, now)
        return seen[1]

    def forget_all(self) -> None:
        """Start over: every peer is baselined again when next seen (after a reconnection,
        when changes may have been missed, or a fresh start)."""
        with self._lock:
            self._seen.clear()

    def overdue(
        self, nodes: Iterable[NodeRecord], me: str, dead_after: float
    ) -> list[tuple[NodeRecord, float]]:
        """Peers in ``run`` whose keepalive this node has not seen change for more than
        ``dead_after`` seconds; ``(record, silence)`` pairs.

        Each record's ``keepalive_zxid`` is taken as seen now (a new one restarts that
        peer's timer). Peers not in ``run`` are forgotten, so a peer that enters ``run``
        again is measured afresh.
        """
        overdue = []
        with self._lock:
            now = self._clock()
            running = set()
            for node in nodes:
                if node.name == me or node.daemon_state != DaemonState.RUN:
                    continue
                running.add(node.name)
                silence = now - self._note(node.name, node.keepalive_zxid, now)
                if silence > dead_after:
                    overdue.append((node, silence))
            for name in set(self._seen) - running:
                del self._seen[name]
        return overdue
