"""How often one address may ask the metadata service: a token bucket per source address.

VMs are untrusted clients; one of them asking in a tight loop must not take the service
(and the cluster state it reads) from the others. Each address gets ``burst`` requests at
once and ``rate`` more each second; beyond that it is answered 429. At most ``sources``
addresses are remembered (the ones seen least recently are forgotten first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

#: Requests a second an address may make over time, and at once.
DEFAULT_RATE = 10.0
DEFAULT_BURST = 50
#: Addresses remembered at most.
DEFAULT_SOURCES = 4096


class SourceLimiter:
    """A token bucket per source address (see the module)."""

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        sources: int = DEFAULT_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.sources, self.clock = rate, burst, sources, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, when)
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        """Whether ``address`` may make a request now (taking one token if so)."""
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.pop(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) * self.rate)
            allowed = tokens >= 1.0
            self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > self.sources:
                self._buckets.popitem(last=False)
        return allowed
