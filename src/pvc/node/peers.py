"""Watching peers: which nodes have stopped sending keepalives."""

from __future__ import annotations

from collections.abc import Iterable

from pvc.state.records import NodeRecord
from pvc.state.states import DaemonState


def overdue_peers(
    nodes: Iterable[NodeRecord], me: str, now: float, dead_after: float
) -> list[tuple[NodeRecord, float]]:
    """Peers in ``run`` whose last keepalive is older than ``dead_after`` seconds.

    Returns ``(record, age)`` pairs. A node that never sent a keepalive is measured
    from its registration time.
    """
    overdue = []
    for node in nodes:
        if node.name == me or node.daemon_state != DaemonState.RUN:
            continue
        last = node.keepalive.timestamp if node.keepalive else node.static.registered
        age = now - last
        if age > dead_after:
            overdue.append((node, age))
    return overdue
