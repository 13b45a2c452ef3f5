"""Run every benchmark and print its figures."""

from __future__ import annotations

import subprocess
import sys

BENCHES = [
    "bench.lab_timings",
    "bench.node_loss",
    "bench.provisioner_db",
    "bench.provisioner_create",
    "bench.metadata_lookup",
    "bench.keepalive_ops",
    "bench.api_latency",
    "bench.api_bounds",
    "bench.vm_list",
    "bench.vm_migration",
    "bench.vm_flush",
    "bench.storage_benchmark",
    "bench.storage_clone",
    "bench.mirror_send",
    "bench.net_reconcile",
]


def main() -> None:
    for module in BENCHES:
        print(f"== {module}", flush=True)
        subprocess.run([sys.executable, "-m", module], check=True)


if __name__ == "__main__":
    main()
