"""A bounded per-node ring of log lines in ZooKeeper (read by ``pvc node log``).

The ring is ``LOG_RING_SLOTS`` znodes under ``/logs/<node>``. The writer fills one slot
at a time (rewriting it as lines arrive) and moves to the next when it holds
``per_slot`` lines, so the ring always keeps at least the newest ``max_lines`` lines
and never more than ``max_lines`` plus one slot. Each slot stores its sequence number,
which orders slots for readers. The writer produces operations for the caller's
transaction (the keepalive), so logging adds no ZooKeeper round trips.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from pvc.state import paths
from pvc.state.records import decode_json
from pvc.state.store import Store, Transaction


def per_slot_lines(max_lines: int, slots: int = paths.LOG_RING_SLOTS) -> int:
    """Lines per slot so that ``slots - 1`` full slots hold at least ``max_lines``."""
    return max(1, math.ceil(max_lines / (slots - 1)))


class LogRingWriter:
    """Buffers lines from any thread; :meth:`add_to` puts the pending writes in a txn."""

    def __init__(self, node: str, max_lines: int, slots: int = paths.LOG_RING_SLOTS) -> None:
        self.node = node
        self.slots = slots
        self.per_slot = per_slot_lines(max_lines, slots)
        self._pending: deque[str] = deque(maxlen=self.per_slot * slots)
        self._lock = threading.Lock()
        self._seq = 0
        self._current: list[str] = []

    def append(self, line: str) -> None:
        with self._lock:
            self._pending.append(line)

    def resume(self, store: Store) -> None:
        """Continue after the newest slot already in ZooKeeper; create missing slots."""
        newest_seq, newest_lines = -1, []
        for slot in range(self.slots):
            path = paths.node_log_slot(self.node, slot)
            content = decode_json(store.get(path))
            if content is None:
                store.set(path, {"seq": -1, "lines": []})
            elif content.get("seq", -1) > newest_seq:
                newest_seq, newest_lines = content["seq"], list(content.get("lines", []))
        if newest_seq < 0:
            self._seq, self._current = 0, []
        elif len(newest_lines) >= self.per_slot:
            self._seq, self._current = newest_seq + 1, []
        else:
            self._seq, self._current = newest_seq, newest_lines

    def add_to(self, txn: Transaction) -> int:
        """Add slot writes for every pending line to ``txn``; returns lines written."""
        with self._lock:
            lines = list(self._pending)
            self._pending.clear()
        written: dict[int, dict] = {}
        for line in lines:
            if len(self._current) >= self.per_slot:
                self._seq += 1
                self._current = []
            self._current.append(line)
            written[self._seq] = {"seq": self._seq, "lines": list(self._current)}
        for seq, content in written.items():
            txn.set(paths.node_log_slot(self.node, seq % self.slots), content)
        return len(lines)


def read_log(store: Store, node: str, lines: int | None = None) -> list[str]:
    """The node's logged lines, oldest first; the last ``lines`` if given."""
    contents = []
    for slot in store.children(paths.node_log(node)):
        content = decode_json(store.get(f"{paths.node_log(node)}/{slot}"))
        if isinstance(content, dict) and content.get("seq", -1) >= 0:
            contents.append(content)
    contents.sort(key=lambda content: content["seq"])
    result = [line for content in contents for line in content.get("lines", [])]
    return result[-lines:] if lines else result
