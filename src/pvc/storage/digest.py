"""A stream's CRC-32, computed beside the stream rather than in its way.

A whole image sent to another cluster is checked end to end by the CRC-32 of its bytes
(with its size): enough to catch any corruption or loss on the way, at a fraction of a
cryptographic hash's cost (the API key authenticates the sender; TLS, when used, protects the
data). :class:`StreamCrc32` adds the blocks in order in a thread of its own (zlib releases
the GIL on large blocks) while the caller goes on reading or writing; at most ``depth``
blocks wait.
"""

from __future__ import annotations

import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor


class StreamCrc32:
    """``update`` in order, in a background thread; ``hexdigest`` once every block is in.
    Use as a context manager (or call :meth:`close`) to end the thread."""

    def __init__(self, depth: int = 4) -> None:
        self._value = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crc32")
        self._pending: deque[Future] = deque()
        self._depth = depth

    def _add(self, block: bytes) -> None:
        self._value = zlib.crc32(block, self._value)

    def update(self, block: bytes) -> None:
        """Queue ``block`` after the ones before it (waits while ``depth`` are queued)."""
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._add, block))

    def hexdigest(self) -> str:
        """The CRC-32 of every block given so far, as 8 hex digits."""
        while self._pending:
            self._pending.popleft().result()
        return f"{self._value:08x}"

    def close(self) -> None:
        """End the thread (blocks still queued are added first)."""
        self._pool.shutdown(wait=True)

    def __enter__(self) -> StreamCrc32:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
