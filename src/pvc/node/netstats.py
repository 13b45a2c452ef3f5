"""Figures of the node's network devices, read from sysfs, with rates between two samples.

Pure: reads files under ``/sys/class/net`` (or another root, for tests) and keeps the
previous sample in memory. The node daemon samples its configured devices with every
keepalive; the result is the node's ``interfaces`` in the API (PVC v1 shape)::

    {"eno1": {"state": "up", "link_speed": 10000, "mtu": 1500,
              "rx_bps": 81920, "tx_bps": 40960, "rx_pps": 12, "tx_pps": 9,
              "total_bps": 122880, "total_pps": 21}}

``link_speed`` is in Mbit/s, rates in bits and packets per second. A figure that cannot be
read (no such device, a link without a speed: the kernel reports -1) is N/A, and so is a
rate until two samples exist or when a counter went backwards (the device was recreated).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pvc.cluster.figures import NOT_KNOWN

#: Where the kernel lists network devices.
SYSFS_NET = Path("/sys/class/net")

#: The cumulative counters sampled, under ``statistics/``.
COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")
#: The rates computed from them.
RATES = ("rx_bps", "tx_bps", "rx_pps", "tx_pps", "total_bps", "total_pps")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:  # no such device, or an attribute the driver refuses to give (EINVAL)
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class DeviceSample:
    """One device's figures at one moment (None: could not be read)."""

    at: float
    state: str | None
    link_speed: int | None
    mtu: int | None
    counters: dict[str, int] | None


def read_device(name: str, root: Path = SYSFS_NET, at: float = 0.0) -> DeviceSample:
    """The figures of device ``name`` now; ``at`` is the (monotonic) time of the sample."""
    base = root / name
    speed = _read_int(base / "speed")
    values = {key: _read_int(base / "statistics" / key) for key in COUNTERS}
    counters = {key: value for key, value in values.items() if value is not None}
    return DeviceSample(
        at=at,
        state=_read(base / "operstate") or None,
        link_speed=speed if speed is not None and speed >= 0 else None,
        mtu=_read_int(base / "mtu"),
        counters=counters if len(counters) == len(COUNTERS) else None,
    )


def _rates(before: DeviceSample | None, now: DeviceSample) -> dict[str, int] | None:
    """Per-second rates between two samples; None when they cannot be computed."""
    if before is None or before.counters is None or now.counters is None:
        return None
    seconds = now.at - before.at
    delta = {key: now.counters[key] - before.counters[key] for key in COUNTERS}
    if seconds <= 0 or any(value < 0 for value in delta.values()):
        return None
    rx_bps = round(delta["rx_bytes"] * 8 / seconds)
    tx_bps = round(delta["tx_bytes"] * 8 / seconds)
    rx_pps = round(delta["rx_packets"] / seconds)
    tx_pps = round(delta["tx_packets"] / seconds)
    return {
        "rx_bps": rx_bps,
        "tx_bps": tx_bps,
        "rx_pps": rx_pps,
        "tx_pps": tx_pps,
        "total_bps": rx_bps + tx_bps,
        "total_pps": rx_pps + tx_pps,
    }


def view(before: DeviceSample | None, now: DeviceSample) -> dict[str, int | str]:
    """One device in the API shape: figures of ``now``, rates since ``before``."""
    rates = _rates(before, now) or dict.fromkeys(RATES, NOT_KNOWN)
    return {
        "state": now.state or NOT_KNOWN,
        "link_speed": NOT_KNOWN if now.link_speed is None else now.link_speed,
        "mtu": NOT_KNOWN if now.mtu is None else now.mtu,
        **rates,
    }


class InterfaceSampler:
    """Samples a fixed set of devices; each :meth:`sample` gives rates since the previous one."""

    def __init__(
        self,
        devices: Iterable[str],
        root: Path = SYSFS_NET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.devices = sorted(set(devices))
        self.root = root
        self.clock = clock
        self._previous: dict[str, DeviceSample] = {}

    def sample(self) -> dict[str, dict[str, int | str]]:
        """Every device's figures now (see :func:`view`)."""
        result = {}
        for name in self.devices:
            now = read_device(name, self.root, self.clock())
            result[name] = view(self._previous.get(name), now)
            self._previous[name] = now
        return result
