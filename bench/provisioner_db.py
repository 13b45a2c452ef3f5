"""The provisioner's database in the lab: how long the provisioner API stays without an
answer when the database leader's member is lost.

A lab of 3 coordinators without Ceph, each running a Patroni member. Each run kills the
member holding the leader key (Patroni and its PostgreSQL, SIGKILL), then times, from that
moment, until a provisioner write and a read through the API both succeed again; then it
starts the member again and waits for it to rejoin as a replica. Prints every run, p50 and
max (target: 30 s).

    python -m bench.provisioner_db [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.labs import own_lab, pvc_lab, wait_until
from pvc.lab import endpoint
from pvc.lab.database import leader, member_roles, provisioner_answers

ALL_UP = ["primary", "replica", "replica"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with own_lab("pvcbd", 83, ceph=False) as layout:
        api = endpoint.client(layout, read_timeout=30)
        wait_until(lambda: provisioner_answers(api, "bench-ready"), timeout=180, interval=1)
        took = []
        for run in range(1, options.runs + 1):
            wait_until(lambda: sorted(member_roles(layout).values()) == ALL_UP, timeout=180, interval=1)
            lost = leader(layout)
            assert lost is not None
            began = time.monotonic()
            pvc_lab(layout.directory, "node", "kill", lost, "--service", "patroni")
            wait_until(lambda n=run: provisioner_answers(api, f"bench-{n}"), timeout=120, interval=0.25)
            took.append(time.monotonic() - began)
            print(f"run {run}: leader {lost} lost -> provisioner API answering again after {took[-1]:.1f} s")
            pvc_lab(layout.directory, "up")  # the member starts again and rejoins
        print(
            f"leader loss -> answering again: p50 {statistics.median(took):.1f} s, "
            f"max {max(took):.1f} s (target 30 s)"
        )


if __name__ == "__main__":
    main()
