"""Node loss in the lab: how fast the guests of a lost node run again elsewhere, and that no
guest ever runs twice.

A lab of 3 coordinators with Ceph, at the project's default timings. Each run puts 3 guests
(RBD disks, a serial heartbeat every 0.25 s) on a node that is not the primary, then either
cuts its power (``pvc-lab node poweroff``: every process of the node dies, its BMC stays up)
or its network (``pvc-lab node partition``: its processes keep running until it fences
itself). It prints, from the moment of the failure:

- detection: the node's daemon state becomes ``dead``;
- fence: its fence record says ``fenced`` (powered off and checked over IPMI);
- recovery: the last of its guests is assigned to another node;
- running: the last guest's first heartbeat after its new boot;

and, over all runs, p50 and max of "running", and how many times two QEMU processes of one
guest were alive at once (sampled every 50 ms). Then the node comes back and ``ready``
returns the guests, for the next run.

    python -m bench.node_loss [--runs 5] [--partition-runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.labs import own_lab, pvc_lab, wait_until
from pvc.lab import demo, endpoint
from pvc.lab.layout import LabLayout
from pvc.lab.witness import beating_since_boot, boots, lab_store, watching
from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.fencing import FenceRecord, FenceState
from pvc.state.store import Store
from pvc.state.vms import VmPlacement

GUESTS = ("nl1", "nl2", "nl3")
TIMEOUT = 120.0


class Lab:
    def __init__(self, layout: LabLayout) -> None:
        self.layout = layout
        self.api = endpoint.client(layout, read_timeout=600)

    def post(self, path: str, **data) -> None:
        reply = self.api.post(path, data=data)
        if reply.status not in (200, 202):
            raise RuntimeError(f"{path}: {reply.status} {reply.data}")

    def one(self, path: str) -> dict:
        data = self.api.get(path).data
        return data[0] if isinstance(data, list) else data

    def states(self, node: str) -> tuple[str, str]:
        data = self.one(f"/node/{node}")
        return data["daemon_state"], data["domain_state"]

    def primary(self) -> str:
        return self.api.get("/status").data["primary_node"]

    def create_guests(self, node: str) -> None:
        layout = self.layout
        demo.start_guests(layout, list(GUESTS), node=node, heartbeat_us=250_000, rbd_size="32M", say=print)
        for name in GUESTS:
            wait_until(lambda name=name: beating_since_boot(layout, name, boots(layout, name)), interval=0.2)

    def bring_home(self, node: str) -> None:
        """Wait for ``node`` to rejoin flushed, make it ready (its guests come back)."""
        wait_until(lambda: self.states(node) == ("run", "flushed"), interval=0.5)
        self.post(f"/node/{node}/domain-state", state="ready", wait="true")
        wait_until(lambda: all(self.one(f"/vm/{g}")["node"] == node for g in GUESTS), interval=0.5)
        wait_until(lambda: all(demo.running_on(self.layout).get(g) == [node] for g in GUESTS), interval=0.5)


def one_run(lab: Lab, victim: str, failure: str) -> dict[str, float]:
    """Fail ``victim`` (``poweroff`` or ``partition``); the breakdown in seconds, and overlaps."""
    layout = lab.layout
    before = {guest: boots(layout, guest) for guest in GUESTS}
    marks: dict[str, float] = {}
    with lab_store(layout) as store, watching(list(GUESTS)) as qemu:
        uuids = [store.get_text(paths.domain_name(guest)) for guest in GUESTS]
        began, began_wall = time.monotonic(), time.time()
        pvc_lab(layout.directory, "node", failure, victim)
        try:
            while len(marks) < 4:
                now = time.monotonic() - began
                if now > TIMEOUT:
                    raise TimeoutError(f"run on {victim} ({failure}) stalled at {sorted(marks)}")
                if not store.connected:  # its member may be the one that was cut off
                    time.sleep(0.05)
                    continue
                try:
                    marks.update(_progress(store, victim, uuids, marks, began_wall, now))
                except StateError:
                    continue
                if (
                    "recovery" in marks
                    and "running" not in marks
                    and all(beating_since_boot(layout, g, before[g] + 1, beats=1) for g in GUESTS)
                ):
                    marks["running"] = now
                time.sleep(0.05)
        finally:
            if failure == "partition":
                pvc_lab(layout.directory, "node", "heal", victim)
        doubles = sum(len(qemu.overlaps(g)) for g in GUESTS)
    marks["doubles"] = doubles
    return marks


def _progress(
    store: Store, victim: str, uuids: list[str], marks: dict, began_wall: float, now: float
) -> dict[str, float]:
    """The marks reached by now, read from ZooKeeper."""
    found: dict[str, float] = {}
    if "detection" not in marks and store.get_text(paths.node_daemon_state(victim)) == "dead":
        found["detection"] = now
    if "fence" not in marks:
        record = FenceRecord.from_bytes(store.get(paths.node_fence(victim)))
        if record is not None and record.started >= began_wall and record.state == FenceState.FENCED:
            found.setdefault("detection", marks.get("detection", now))
            found["fence"] = now
    if "recovery" not in marks and ("fence" in marks or "fence" in found):
        placements = [VmPlacement.from_bytes(store.get(paths.domain_state(u))) for u in uuids]
        if all(p is not None and p.node != victim for p in placements):
            found["recovery"] = now
    return found


def summary(label: str, runs: list[dict[str, float]]) -> None:
    running = [run["running"] for run in runs]
    doubles = sum(int(run["doubles"]) for run in runs)
    print(
        f"{label}: {len(runs)} runs; every guest running again elsewhere "
        f"p50 {statistics.median(running):.1f} s, max {max(running):.1f} s; double runs {doubles}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partition-runs", type=int, default=5)
    args = parser.parse_args()
    # Without the database members (see tests/lab/test_lab_fencing.py).
    with own_lab("pvcbn", 91, database=False) as layout:
        lab = Lab(layout)
        victims = [node for node in layout.node_names if node != lab.primary()]
        lab.create_guests(victims[0])
        home = victims[0]
        results: dict[str, list[dict[str, float]]] = {"poweroff": [], "partition": []}
        plan = ["poweroff"] * args.runs + ["partition"] * args.partition_runs
        for number, failure in enumerate(plan, start=1):
            marks = one_run(lab, home, failure)
            results[failure].append(marks)
            print(
                f"run {number} ({failure} of {home}): detection {marks['detection']:.1f} s, "
                f"fence {marks['fence']:.1f} s, recovery {marks['recovery']:.1f} s, "
                f"running {marks['running']:.1f} s, double runs {int(marks['doubles'])}",
                flush=True,
            )
            lab.bring_home(home)
        for failure, runs in results.items():
            if runs:
                summary(failure, runs)


if __name__ == "__main__":
    main()
