"""Client I/O through each OSD: operations and bytes per second, from the OSDs' own counters.

Every OSD counts the client operations it served (its ``osd`` perf counters ``op_w``,
``op_r``, ``op_in_bytes``, ``op_out_bytes``, cumulative since it started). A
:class:`OsdIoRates` samples them on each call and turns the difference from its previous
sample into per-second rates, the figures ``ceph osd status`` shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass

from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError

#: Seconds to wait for one OSD's counters (an OSD marked up may be gone).
COUNTER_TIMEOUT = 2.0


@dataclass(frozen=True)
class OpCounters:
    """An OSD's cumulative client I/O counters."""

    wr_ops: int
    wr_bytes: int
    rd_ops: int
    rd_bytes: int


def op_counters(client: CephClient, osd_id: int, timeout: float = COUNTER_TIMEOUT) -> OpCounters:
    """The OSD's client I/O counters now; StorageError if it does not answer."""
    dump = client.osd_command(osd_id, "perf dump", logger="osd", timeout=timeout)
    counters = dump.get("osd", {}) if isinstance(dump, dict) else {}
    try:
        return OpCounters(
            wr_ops=int(counters["op_w"]),
            wr_bytes=int(counters["op_in_bytes"]),
            rd_ops=int(counters["op_r"]),
            rd_bytes=int(counters["op_out_bytes"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(f"osd.{osd_id} reported no client I/O counters") from exc


def _per_second(now: int, before: int, seconds: float) -> int:
    """A counter's rate between two samples."""
    return round((now - before) / seconds)


class OsdIoRates:
    """Per-second client I/O of each OSD between two samples.

    ``counters`` reads one OSD's counters (default :func:`op_counters`); ``clock`` gives
    seconds (default ``time.monotonic``). An OSD seen for the first time, or one whose
    counters went backwards (it restarted), has no rate until the next sample: it is left
    out, and the views show its rates as not known rather than as an idle 0.
    """

    def __init__(
        self,
        counters: Callable[[CephClient, int], OpCounters] = op_counters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        self._clock = clock
        self._last: dict[int, tuple[float, OpCounters]] = {}

    def sample(self, client: CephClient, osd_ids: Iterable[int]) -> dict[int, dict[str, int]]:
        """Rates of the OSDs in ``osd_ids`` that answer: ``{id: {wr_ops, wr_data, rd_ops, rd_data}}``.

        Ops and bytes per second since this object's previous sample of that OSD; an OSD
        that does not answer is left out (and starts afresh when it answers again), as is
        one without a usable previous sample.
        """
        rates: dict[int, dict[str, int]] = {}
        seen: dict[int, tuple[float, OpCounters]] = {}
        for osd_id in osd_ids:
            try:
                now = self._counters(client, osd_id)
            except StorageError:
                continue
            at = self._clock()
            seen[osd_id] = (at, now)
            if osd_id not in self._last:
                continue
            before_at, before = self._last[osd_id]
            seconds = at - before_at
            if seconds <= 0:
                seen[osd_id] = self._last[osd_id]  # no time has passed: keep the earlier sample
                continue
            if any(n < b for n, b in zip(astuple(now), astuple(before), strict=True)):
                continue  # the OSD restarted: its counters start again from 0
            rates[osd_id] = {
                "wr_ops": _per_second(now.wr_ops, before.wr_ops, seconds),
                "wr_data": _per_second(now.wr_bytes, before.wr_bytes, seconds),
                "rd_ops": _per_second(now.rd_ops, before.rd_ops, seconds),
                "rd_data": _per_second(now.rd_bytes, before.rd_bytes, seconds),
            }
        self._last = seen
        return rates
