"""Live migration of a real TCG guest between lab nodes: QEMU downtime and total time.

Brings up its own lab, boots the tiny guest on hv1, then migrates it around the nodes
``--rounds`` times. Prints define->running time, and downtime p50/max and total time
of the migrations. Run: .venv/bin/python -m bench.vm_migration [--rounds 9] [--max-downtime 300]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.labs import own_lab
from pvc.hypervisor.adapter import Hypervisor
from pvc.lab import demo, libvirtd
from pvc.lab.guest import BOOT_MARKER
from pvc.lab.layout import LabLayout

PREFIX, NET_INDEX = "pvcb", 79


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--max-downtime",
        type=int,
        nargs="+",
        default=[300, 50],
        help="ms; each value is measured in turn (PVC's per-VM default is 300)",
    )
    args = parser.parse_args()
    with own_lab(PREFIX, NET_INDEX) as layout:
        run(layout, args.rounds, args.max_downtime)


def run(layout: LabLayout, rounds: int, max_downtimes: list[int]) -> None:
    xml = demo.direct_guest_xml(layout, "bench-vm", heartbeat_us=200_000, memory_mib=128)
    serial = demo.serial_log(layout, "bench-vm")
    nodes = layout.node_names
    current = Hypervisor(libvirtd.uri(layout, nodes[0])).connect()
    started = time.monotonic()
    current.define(xml)
    current.start("bench-vm")
    print(f"define -> running: {time.monotonic() - started:.2f} s")
    while not (serial.exists() and BOOT_MARKER in serial.read_text()):
        time.sleep(0.1)
    print(f"define -> boot marker: {time.monotonic() - started:.2f} s")
    position = 0
    for max_downtime in max_downtimes:
        downtimes, totals = [], []
        for _ in range(rounds):
            position += 1
            target = nodes[position % len(nodes)]
            result = current.migrate(
                "bench-vm",
                libvirtd.peer_uri(layout, target),
                max_downtime_ms=max_downtime,
                migration_uri=libvirtd.migration_uri(layout, target),
            )
            totals.append(result.seconds)
            if result.downtime_ms is not None:
                downtimes.append(result.downtime_ms)
            current.close()
            current = Hypervisor(libvirtd.uri(layout, target)).connect()
        print(
            f"{rounds} live migrations (max downtime {max_downtime} ms): "
            f"downtime p50 {statistics.median(downtimes):.0f} ms, max {max(downtimes)} ms; "
            f"total p50 {statistics.median(totals):.2f} s, max {max(totals):.2f} s"
        )
    current.destroy("bench-vm")
    current.undefine("bench-vm")


if __name__ == "__main__":
    main()
