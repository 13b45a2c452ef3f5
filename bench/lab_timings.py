"""Lab figures: ``pvc-lab up`` wall time and RSS, dead detection, failover, idle CPU.

Brings up its own lab (separate directory, prefix and subnet), then measures:
  (a) seconds from SIGKILL of a secondary's pvcnoded to ``dead`` as seen in ZooKeeper;
  (b) seconds from SIGKILL of the primary's pvcnoded to a new primary, and from the end
      of its ZooKeeper session (its presence znode vanishing) to the new primary;
  (d) ``pvc-lab up`` wall time and the peak summed RSS of the lab's processes;
  and the CPU used by idle node daemons, in % of one core.

Run: .venv/bin/python -m bench.lab_timings [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

from bench.labs import pvc_lab, wait_until
from pvc.client.errors import ApiError, ApiUnreachable
from pvc.config import read_credential_file
from pvc.lab import endpoint
from pvc.lab.layout import LabLayout
from pvc.processes import ProcessRef, is_alive
from pvc.state import paths
from pvc.state.store import Store

PREFIX, NET_INDEX = "pvcb", 78
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def lab_processes(lab_dir: Path) -> dict[str, ProcessRef]:
    data = json.loads((lab_dir / "lab.json").read_text())
    return {key: ProcessRef.from_json(value) for key, value in data["processes"].items()}


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return 0


def cpu_ticks(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


class RssSampler(threading.Thread):
    """Samples the summed RSS of the lab's processes while ``up`` runs."""

    def __init__(self, lab_dir: Path) -> None:
        super().__init__(daemon=True)
        self.lab_dir = lab_dir
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                refs = lab_processes(self.lab_dir).values()
            except (OSError, ValueError):
                refs = []
            self.peak = max(self.peak, sum(rss_bytes(ref.pid) for ref in refs if is_alive(ref)))
            time.sleep(0.1)


def measure_api_move(layout: LabLayout, nodes: list[str]) -> None:
    """Move the primary through the API; time until the API answers from the new primary."""
    client = endpoint.client(layout, read_timeout=5)
    # One quick try per probe: the API is away while it moves, and the probes measure when it is back.
    probe = endpoint.client(layout, read_timeout=0.5, connect_timeout=0.5, get_attempts=1)
    for _ in range(3):
        primary = client.get("/status/primary_node").expect(200)["primary_node"]
        target = next(node for node in nodes if node != primary)
        started = time.monotonic()
        client.post(f"/node/{target}/coordinator-state", params={"state": "primary"})

        def answered(target: str = target) -> bool:
            try:
                node = probe.get(f"/node/{target}").expect_one(f"Node {target}")
            except (ApiError, ApiUnreachable):
                return False
            return node.get("coordinator_state") == "primary"

        wait_until(answered, 60, interval=0.02)
        print(f"API answering on the new primary ({primary} -> {target}): {time.monotonic() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)  # the lab's APIs run unprivileged and must enter it
        lab_dir = Path(tmp) / "lab"
        sampler = RssSampler(lab_dir)
        sampler.start()
        started = time.monotonic()
        pvc_lab(lab_dir, "up", "--prefix", PREFIX, "--net-index", str(NET_INDEX))
        up_seconds = time.monotonic() - started
        time.sleep(2)
        sampler.done.set()
        sampler.join()
        try:
            report(lab_dir, up_seconds, sampler.peak, args.idle_seconds)
        finally:
            pvc_lab(lab_dir, "down")


def report(lab_dir: Path, up_seconds: float, peak_rss: int, idle_seconds: float) -> None:
    print(f"(d) pvc-lab up, 3 nodes run with one primary: {up_seconds:.2f} s wall")
    print(f"(d) peak RSS of the lab's processes: {peak_rss / 2**20:.0f} MiB")

    refs = lab_processes(lab_dir)
    daemons = {key.split("/")[0]: ref for key, ref in refs.items() if key.endswith("/pvcnoded")}
    before = {node: cpu_ticks(ref.pid) for node, ref in daemons.items()}
    time.sleep(idle_seconds)
    for node, ref in daemons.items():
        share = (cpu_ticks(ref.pid) - before[node]) / TICKS / idle_seconds * 100
        print(f"idle pvcnoded on {node}: {share:.2f} % of one core over {idle_seconds:g} s")

    layout = json.loads((lab_dir / "lab.json").read_text())["layout"]
    measure_api_move(LabLayout.from_json(layout), list(daemons))
    hosts = ",".join(f"10.110.{NET_INDEX}.{i}:2181" for i in range(1, layout["coordinators"] + 1))
    credential = read_credential_file(LabLayout.from_json(layout).zookeeper_auth_file)
    store = Store(hosts, timeout=5, credential=credential)
    store.start()
    try:
        primary = store.get_text(paths.PRIMARY_NODE)
        secondary = next(node for node in daemons if node != primary)

        os.kill(daemons[secondary].pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: store.get_text(paths.node_daemon_state(secondary)) == "dead", 120)
        print(
            f"(a) SIGKILL of pvcnoded on {secondary} -> 'dead' seen by peers: "
            f"{time.monotonic() - killed:.2f} s (window keepalive_interval x fence_intervals = "
            f"{layout['keepalive_interval'] * layout['fence_intervals']:g} s)"
        )

        presence_gone: list[float] = []
        store.client.DataWatch(
            paths.node_presence(primary),
            lambda data, stat: presence_gone.append(time.monotonic()) if stat is None else None,
        )
        os.kill(daemons[primary].pid, signal.SIGKILL)
        killed = time.monotonic()

        def new_primary():
            name = store.get_text(paths.PRIMARY_NODE)
            if name not in (primary, "none") and (
                store.get_text(paths.node_coordinator_state(name)) == "primary"
            ):
                return name
            return None

        try:
            elected = wait_until(new_primary, 60)
        except TimeoutError:
            for node in daemons:
                log = lab_dir / "nodes" / node / "log" / "pvcnoded.log"
                print(
                    f"--- no new primary; last lines of {node}:",
                    *log.read_text().splitlines()[-15:],
                    sep="\n",
                )
            raise
        now = time.monotonic()
        print(f"(b) SIGKILL of the primary ({primary}) -> new primary {elected}: {now - killed:.2f} s")
        if presence_gone:
            print(
                f"(b) end of the old primary's session -> new primary: {now - presence_gone[0]:.2f} s "
                f"(session timeout {layout['session_timeout']:g} s)"
            )
    finally:
        store.stop()


if __name__ == "__main__":
    main()
