"""Time of one pass of the primary's storage stats refresh, by number of volumes.

Starts its own Ceph (own directory and ports, one file-backed OSD), then for each volume
count in ``--counts`` creates volumes (each with one snapshot) up to that count and times
``pvc.cluster.storage.mirror.collect`` — everything the primary reads from Ceph for the ZooKeeper mirror
in one pass — ``--passes`` times. Prints p50 and max per pass and per volume, to compare
with the refresh interval (``storage.stats_interval``, 5 s by default).

Run: .venv/bin/python -m bench.storage_refresh [--counts 50,200] [--passes 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pvc.cluster.storage.mirror import collect
from pvc.lab import standalone_ceph
from pvc.storage import snapshots, volumes
from pvc.storage.client import CephClient
from pvc.storage.osd_io import OsdIoRates

#: apart from the lab's, the storage tests' and the other storage benchmarks' ports
PORTS = standalone_ceph.Ports(mon_v2=13810, mon_v1=16499, bind_min=18900, bind_max=19100)
POOL = "rbd"


def grow(client: CephClient, count: int) -> None:
    """Create volumes ``bench-N`` (64 MiB, one snapshot each) until the pool holds ``count``."""
    have = len(volumes.names(client, POOL))
    for number in range(have, count):
        name = f"bench-{number:05d}"
        volumes.create(client, POOL, name, 64 * 2**20, force=True)
        snapshots.create(client, POOL, name, "s1")


def time_passes(client: CephClient, passes: int) -> list[float]:
    """Seconds of each of ``passes`` collect passes (with OSD I/O sampling, as the primary runs it)."""
    io = OsdIoRates()
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        collect(client, io)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="50,200", help="comma-separated volume counts")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    counts = sorted(int(count) for count in args.counts.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "ceph"
        lab = standalone_ceph.start(directory, 1, ports=PORTS, pool=POOL, pool_pgs=32, die_with_parent=True)
        try:
            with lab.client(timeout=30) as client:
                for count in counts:
                    grow(client, count)
                    times = time_passes(client, args.passes)
                    p50 = statistics.median(times)
                    print(
                        f"{count:6d} volumes (1 snapshot each): collect p50 {p50 * 1000:7.1f} ms "
                        f"(max {max(times) * 1000:7.1f} ms), {p50 / count * 1000:.2f} ms per volume",
                        flush=True,
                    )
        finally:
            lab.stop(grace=0)
            shutil.rmtree(directory / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
