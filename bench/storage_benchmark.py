"""Storage benchmark figures: PVC's librbd I/O ("ours") beside ``rbd bench`` ("raw"), and their ratio.

Starts its own small Ceph (own directory and ports, one file-backed OSD by default) and runs
pvc.storage.benchmark at realistic sizes: 4K random writes and reads over a 256 MiB image,
4M sequential writes and reads over a 1 GiB image, queue depth 16, several rounds with the
order of the two sides alternating. Prints each test's IOPS and MiB/s for both sides and
ours/raw. Figures on a shared 2-core machine vary from run to run by tens of per cent; the
ratio, measured side by side, varies much less.

Run: .venv/bin/python -m bench.storage_benchmark [--osds 1] [--rounds 4] [--no-reads] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from pvc.lab import standalone_ceph
from pvc.storage import benchmark
from pvc.storage.units import parse_size

#: apart from the lab's, the storage tests' and bench.storage_clone's ports
PORTS = standalone_ceph.Ports(mon_v2=13610, mon_v1=16699, bind_min=18300, bind_max=18500)
POOL = "rbd"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osds", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--queue-depth", type=int, default=16)
    parser.add_argument("--rand-region", default="256M")
    parser.add_argument("--rand-bytes", default="256M")
    parser.add_argument("--seq-region", default="1G")
    parser.add_argument("--seq-bytes", default="2G")
    parser.add_argument("--no-reads", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the full report as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "ceph"
        started = time.monotonic()
        lab = standalone_ceph.start(
            directory, args.osds, ports=PORTS, pool=POOL, pool_pgs=32, die_with_parent=True
        )
        print(f"Ceph with {args.osds} OSD(s) ready in {time.monotonic() - started:.1f} s", flush=True)
        try:
            with lab.client(timeout=30) as client:
                result = benchmark.run(
                    client,
                    POOL,
                    reads=not args.no_reads,
                    queue_depth=args.queue_depth,
                    rand_region=parse_size(args.rand_region),
                    rand_bytes=parse_size(args.rand_bytes),
                    seq_region=parse_size(args.seq_region),
                    seq_bytes=parse_size(args.seq_bytes),
                    rounds=args.rounds,
                    progress=lambda step, total, message: print(f"  [{step}/{total}] {message}", flush=True),
                )
        finally:
            lab.stop(grace=0)
            shutil.rmtree(directory / "data", ignore_errors=True)
    report = result.to_dict()
    print(
        f"pool {POOL}, {args.osds} OSD(s), queue depth {args.queue_depth}, {args.rounds} round(s), "
        f"{report['elapsed_s']:.1f} s in all"
    )
    for name, test in report["tests"].items():
        ours, raw = test["ours"], test["raw"]
        print(
            f"{name:14} ours {ours['iops']:9.0f} IOPS {ours['bandwidth_mib_s']:7.1f} MiB/s | "
            f"raw {raw['iops']:9.0f} IOPS {raw['bandwidth_mib_s']:7.1f} MiB/s | ratio {test['ratio']:.3f}"
        )
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
