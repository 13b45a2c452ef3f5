"""The metadata service's per-address token buckets."""

from __future__ import annotations

from pvc.metadata.limits import SourceLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_and_each_address_on_its_own():
    clock = Clock()
    limiter = SourceLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("10.0.0.2")  # another address has its own bucket
    clock.now += 0.5  # one token back at 2 a second
    assert [limiter.allow("10.0.0.1") for _ in range(2)] == [True, False]
    clock.now += 60  # refilled, but never beyond the burst
    assert [limiter.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]


def test_refused_requests_do_not_dig_a_deeper_hole():
    clock = Clock()
    limiter = SourceLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.allow("a")
    assert not any(limiter.allow("a") for _ in range(100))
    clock.now += 1.0
    assert limiter.allow("a")


def test_only_so_many_addresses_are_remembered_the_least_recent_forgotten_first():
    clock = Clock()
    limiter = SourceLimiter(rate=0.0, burst=1, sources=2, clock=clock)
    assert limiter.allow("a") and limiter.allow("b")
    assert not limiter.allow("a")  # a is now the most recent
    assert limiter.allow("c")  # b is forgotten
    assert len(limiter._buckets) == 2 and "b" not in limiter._buckets
    assert limiter.allow("b")  # a fresh bucket: forgetting only ever lets an address in sooner
