"""Flush of a lab node running 10 small VMs, then ready: seconds, and every guest alive.

Brings up its own lab, starts ``--vms`` tiny TCG guests on hv1 through the API, then
times ``flush`` of hv1 (``wait=true``: returns when the node is ``flushed``) and
``ready`` (every VM back). A guest is alive afterwards if libvirt runs it on exactly
the node its record names and its console heartbeat kept counting without a restart.
Run: .venv/bin/python -m bench.vm_flush [--vms 10]
"""

from __future__ import annotations

import argparse
import time

from bench.labs import own_lab
from pvc.client.http import ApiClient
from pvc.lab import demo, endpoint
from pvc.lab.guest import heartbeats
from pvc.lab.layout import LabLayout

PREFIX, NET_INDEX = "pvcf", 81
#: Seconds a flush or ready of the node (``wait=true``) may take.
STATE_TIMEOUT = 900.0


def beats(layout: LabLayout, name: str) -> list[int]:
    return heartbeats(demo.serial_log(layout, name).read_text(errors="replace"))


def check_alive(
    layout: LabLayout, client: ApiClient, names: list[str], before: dict[str, list[int]]
) -> list[str]:
    """Problems found: guests not running exactly where recorded, restarted or silent."""
    time.sleep(3)  # a few heartbeats
    where = demo.running_on(layout)
    problems = []
    for name in names:
        node = client.get(f"/vm/{name}").expect_one(f"VM {name}")["node"]
        if where.get(name) != [node]:
            problems.append(f"{name}: recorded on {node}, running on {where.get(name)}")
        now = beats(layout, name)
        counted_on = now[: len(before[name])] == before[name] and len(now) > len(before[name])
        if not counted_on or now != list(range(now[0], now[0] + len(now))):
            problems.append(f"{name}: heartbeat restarted or stopped")
    return problems


def timed(client: ApiClient, state: str) -> float:
    started = time.monotonic()
    client.post("/node/hv1/domain-state", data={"state": state, "wait": "true"}).expect(200)
    return time.monotonic() - started


def run(layout: LabLayout, count: int) -> None:
    names = [f"flush{i}" for i in range(1, count + 1)]
    started = time.monotonic()
    demo.start_guests(layout, names, node="hv1", heartbeat_us=1_000_000, say=lambda _: None, timeout=600)
    print(f"{count} guests booted on hv1 in {time.monotonic() - started:.1f} s")
    client = endpoint.client(layout, read_timeout=STATE_TIMEOUT)
    for state in ("flush", "ready"):
        before = {name: beats(layout, name) for name in names}
        seconds = timed(client, state)
        problems = check_alive(layout, client, names, before)
        spread = sorted({node for nodes in demo.running_on(layout).values() for node in nodes})
        verdict = "every VM alive" if not problems else "; ".join(problems)
        print(
            f"{state} of hv1 with {count} VMs: {seconds:.1f} s ({seconds / count:.2f} s per VM), "
            f"running on {spread}: {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=10)
    args = parser.parse_args()
    with own_lab(PREFIX, NET_INDEX) as layout:
        run(layout, args.vms)


if __name__ == "__main__":
    main()
