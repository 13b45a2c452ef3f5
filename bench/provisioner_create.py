"""``provisioner create --wait`` with the ``clone`` script in the lab: from the API call to
the VM's QEMU running (guest boot excluded), with the task's stage breakdown.

A lab of 3 nodes with Ceph and the database. The lab's clone profile (a copy-on-write
clone of a base volume's snapshot, grown to 1 GiB, on a managed network) makes each VM;
each run times the API call until the task finished, then until its QEMU had opened the
serial console (libvirt started the domain). Prints every run, p50 and max (target 10 s).

    python -m bench.provisioner_create [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.labs import own_lab, wait_until
from pvc.cluster.provisioner.create import STAGES
from pvc.lab import demo, endpoint, provisioning
from pvc.lab.database import provisioner_answers

TARGET = 10.0
NETWORK = provisioning.LabNetwork(4300, "bench.lab.test", "10.181.0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with own_lab("pvcbc", 84) as layout:
        api = endpoint.client(layout, read_timeout=60)
        wait_until(lambda: provisioner_answers(api, "bench-ready"), timeout=180, interval=1)
        provisioning.prepare_clone_profile(api, NETWORK)
        took = []
        for run in range(1, options.runs + 1):
            name = f"bench{run}"
            began = time.monotonic()
            status, task_done = provisioning.create(api, name)
            if status["state"] != "SUCCESS":
                raise SystemExit(f"run {run}: {status}")
            wait_until(lambda n=name: demo.serial_log(layout, n).exists(), timeout=60, interval=0.05)
            took.append(time.monotonic() - began)
            stages = status["result"]["stages"]
            breakdown = ", ".join(f"{stage} {stages[stage]:.2f}" for stage in STAGES if stage in stages)
            print(f"run {run}: task done {task_done:.2f} s, QEMU running {took[-1]:.2f} s ({breakdown})")
        print(
            f"provisioner create -> VM running: p50 {statistics.median(took):.2f} s, "
            f"max {max(took):.2f} s (target {TARGET:g} s)"
        )


if __name__ == "__main__":
    main()
