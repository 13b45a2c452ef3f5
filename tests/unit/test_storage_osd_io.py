"""OSD client I/O rates from two samples of the OSDs' cumulative counters (no Ceph needed)."""

from __future__ import annotations

from pvc.storage.errors import StorageError
from pvc.storage.osd_io import OpCounters, OsdIoRates


class FakeOsds:
    """Counters per OSD id that the test moves on; an id in ``silent`` does not answer."""

    def __init__(self) -> None:
        self.counters: dict[int, OpCounters] = {}
        self.silent: set[int] = set()
        self.now = 100.0

    def read(self, _client: object, osd_id: int) -> OpCounters:
        if osd_id in self.silent:
            raise StorageError(f"osd.{osd_id} does not answer")
        return self.counters[osd_id]


def test_rates_are_differences_per_second_and_first_samples_are_not_known() -> None:
    osds = FakeOsds()
    rates = OsdIoRates(counters=osds.read, clock=lambda: osds.now)
    osds.counters = {0: OpCounters(10, 4096, 5, 1024), 1: OpCounters(0, 0, 0, 0)}
    assert rates.sample(None, [0, 1]) == {}  # one sample gives no rate, not a rate of 0

    osds.now += 2.0
    osds.counters = {0: OpCounters(210, 4096 + 8 * 2**20, 65, 1024 + 2048), 1: OpCounters(1, 0, 0, 0)}
    assert rates.sample(None, [0, 1]) == {
        0: {"wr_ops": 100, "wr_data": 4 * 2**20, "rd_ops": 30, "rd_data": 1024},
        1: {"wr_ops": 0, "wr_data": 0, "rd_ops": 0, "rd_data": 0},  # 0.5/s rounds to 0
    }


def test_restarted_silent_and_new_osds() -> None:
    osds = FakeOsds()
    rates = OsdIoRates(counters=osds.read, clock=lambda: osds.now)
    osds.counters = {0: OpCounters(1000, 1000, 1000, 1000), 1: OpCounters(50, 50, 50, 50)}
    rates.sample(None, [0, 1])

    osds.now += 1.0
    osds.counters[0] = OpCounters(3, 30, 1001, 1000)  # restarted: counters went back
    osds.silent = {1}
    osds.counters[2] = OpCounters(7, 7, 7, 7)
    assert rates.sample(None, [0, 1, 2]) == {
        0: {"wr_ops": 0, "wr_data": 0, "rd_ops": 1, "rd_data": 0},
    }  # osd.2 is new: no rates yet

    # the silent OSD answers again: it starts afresh instead of spanning the gap
    osds.now += 1.0
    osds.silent = set()
    osds.counters[1] = OpCounters(80, 50, 50, 50)
    assert rates.sample(None, [1]) == {}
    osds.now += 1.0
    osds.counters[1] = OpCounters(85, 50, 50, 50)
    assert rates.sample(None, [1])[1]["wr_ops"] == 5
