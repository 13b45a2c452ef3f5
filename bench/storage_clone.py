"""Copy-on-write clone time and OSD add time on a small real Ceph.

Starts its own Ceph (own directory and ports, one file-backed OSD), writes 1 GiB into a
volume, snapshots it, then times ``volumes.clone_from_snapshot`` of that snapshot
``--clones`` times (p50 and max; the first also protects the snapshot). Then adds
``--adds`` OSDs one after another with ``LabCeph.add_osd`` and times each until it is up
and in, until it holds PGs, and until the cluster is active+clean again with the data
rebalanced (the pool keeps one copy, so part of the 1 GiB moves to each new OSD).

Run: .venv/bin/python -m bench.storage_clone [--clones 10] [--adds 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pvc.lab import standalone_ceph
from pvc.storage import osds, snapshots, status, volumes
from pvc.storage.client import CephClient
from pvc.storage.images import open_image
from pvc.storage.units import parse_size

#: apart from the lab's, the storage tests' and bench.storage_benchmark's ports
PORTS = standalone_ceph.Ports(mon_v2=13710, mon_v1=16599, bind_min=18600, bind_max=18800)
POOL = "rbd"
GIB = parse_size("1G")


def fill(client: CephClient, name: str, size: int) -> None:
    """Write ``size`` bytes of non-zero data, 4 MiB at a time."""
    block = bytes(range(256)) * (4 * 1024**2 // 256)
    with open_image(client, POOL, name, read_only=False) as image:
        for offset in range(0, size, len(block)):
            image.write(block, offset)
        image.flush()


def clone_times(client: CephClient, count: int) -> None:
    volumes.create(client, POOL, "golden", GIB)
    started = time.monotonic()
    fill(client, "golden", GIB)
    print(f"1 GiB written into the source volume in {time.monotonic() - started:.1f} s", flush=True)
    snapshots.create(client, POOL, "golden", "base")
    times = []
    for i in range(count):
        started = time.monotonic()
        volumes.clone_from_snapshot(client, POOL, "golden", "base", f"clone{i}")
        times.append(time.monotonic() - started)
    print(
        f"clone_from_snapshot of a 1 GiB volume, {count} runs: p50 {statistics.median(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms (first, which also protects the snapshot: {times[0] * 1000:.0f} ms)"
    )


def osd_add_times(lab: standalone_ceph.LabCeph, client: CephClient, count: int) -> None:
    for _ in range(count):
        started = time.monotonic()
        osd_id = lab.add_osd()
        up = time.monotonic() - started
        # PG statistics show the new OSD's share ~2 s after it is up and in; until then they
        # still say active+clean from before, so wait for its PGs before waiting for clean
        while osds.get(client, osd_id).pgs == 0:
            if time.monotonic() - started > 120:
                raise TimeoutError(f"osd.{osd_id} got no PGs within 120 s")
            time.sleep(0.2)
        mapped = time.monotonic() - started
        # clean, and the new OSD's share of the data (a third of 1 GiB or more) shows on it
        while (
            status.readiness(client, len(lab.osd_ids)) or osds.get(client, osd_id).kb_used_data < 100 * 1024
        ):
            if time.monotonic() - started > 600:
                raise TimeoutError(f"data not moved to osd.{osd_id} within 600 s")
            time.sleep(0.2)
        clean = time.monotonic() - started
        print(
            f"add osd.{osd_id} (cluster now {len(lab.osd_ids)} OSDs): up and in after {up:.1f} s, "
            f"PGs mapped to it after {mapped:.1f} s, data moved and all PGs active+clean after {clean:.1f} s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", type=int, default=10)
    parser.add_argument("--adds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "ceph"
        started = time.monotonic()
        lab = standalone_ceph.start(directory, 1, ports=PORTS, pool=POOL, pool_pgs=32, die_with_parent=True)
        print(f"Ceph with 1 OSD ready in {time.monotonic() - started:.1f} s", flush=True)
        try:
            with lab.client(timeout=30) as client:
                clone_times(client, args.clones)
                osd_add_times(lab, client, args.adds)
        finally:
            lab.stop(grace=0)
            shutil.rmtree(directory / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
