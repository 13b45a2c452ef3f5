"""Bounded requests against a real ``pvcapid`` (gunicorn) and a real ZooKeeper.

Targets: the pathological ``limit`` (``^(?:[0-9a-f-]|[0-9a-f-]){0,24}#$``, a
backtracking engine explores 2**24 ways to split each UUID) answers in <= 50 ms from a
read-only key while a concurrent ``GET /status`` keeps p99 <= 20 ms; and 64 concurrent
``wait=true`` requests (VM stops and node flushes no daemon carries out, so every one is
held until ``api.limits.wait_timeout``) leave ``GET /status`` at p99 <= 20 ms.

Starts a standalone ZooKeeper, writes 100 nodes and 1000 VMs (``bench.vm_list``), runs
``python -m pvc.api.daemon`` with its default worker model (``api.limits``) on loopback
and drives it over HTTP. Prints latencies in milliseconds, how the waits were answered
and the CPU the daemon used while holding them.

Run: .venv/bin/python -m bench.api_bounds [--waits 64] [--wait-timeout 10]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from bench.api_latency import CREDENTIAL, populate
from bench.vm_list import ZOOKEEPER_HEAP_MB, populate_vms
from pvc import processes
from pvc.lab import zookeeper
from pvc.state.schema import ensure_schema
from pvc.state.store import Store

PATHOLOGICAL = "^(?:[0-9a-f-]|[0-9a-f-]){0,24}#$"
LIMIT_TARGET_MS = 50.0
STATUS_P99_TARGET_MS = 20.0
KEYS = {role: f"bench-{role}-{secrets.token_hex(16)}" for role in ("read-only", "operator")}


def node_config(zk_port: int, api_port: int, wait_timeout: float, directory: Path) -> dict:
    """A minimal node configuration for pvcapid on loopback (default api.limits but the wait)."""
    net = {"address": "10.100.0.1/24", "floating_address": "10.100.0.250/24"}
    return {
        "cluster": {"name": "bench"},
        "node": {"name": "node000"},
        "coordinators": ["node000"],
        "zookeeper": {
            "hosts": [f"127.0.0.1:{zk_port}"],
            "session_timeout": 10,
            "auth_file": str(directory / "zookeeper.auth"),
        },
        "paths": {"state_dir": str(directory / "state"), "log_dir": str(directory / "log")},
        "networks": {
            "upstream": net,
            "cluster": {"address": "10.110.0.1/24"},
            "storage": {"address": "10.120.0.1/24"},
        },
        "api": {
            "listen": {"address": "127.0.0.1", "port": api_port},
            "authentication": {"enabled": True, "source": "token"},
            "token": [{"token": token, "role": role} for role, token in KEYS.items()],
            "limits": {"wait_timeout": wait_timeout},
        },
    }


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def summary(samples: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples):.2f} ms, p99 {percentile(samples, 0.99):.2f} ms, "
        f"max {max(samples):.2f} ms ({len(samples)} requests)"
    )


class StatusProbe(threading.Thread):
    """``GET /status`` over one keep-alive connection, every ``pause`` seconds, until stopped."""

    def __init__(self, base: str, pause: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.base, self.pause = base, pause
        self.samples: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        headers = {"X-Api-Key": KEYS["read-only"]}
        while not self.halt.is_set():
            started = time.perf_counter()
            session.get(f"{self.base}/status", headers=headers, timeout=60).raise_for_status()
            self.samples.append((time.perf_counter() - started) * 1000)
            time.sleep(self.pause)

    def stop(self) -> list[float]:
        self.halt.set()
        self.join()
        return self.samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children (gunicorn's master and worker)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def python_re_reference() -> float:
    """Seconds Python's backtracking ``re`` takes to reject one UUID (the old engine)."""
    pattern = re.compile(PATHOLOGICAL[1:-1])
    started = time.perf_counter()
    pattern.fullmatch(str(uuid.uuid4()))
    return time.perf_counter() - started


def hammer(base: str, limit: str, seconds: float) -> tuple[list[float], list[float]]:
    """``GET /vm?limit=<limit>`` back to back for ``seconds`` from a read-only key, a probe on
    /status meanwhile: (limit request samples, /status samples) in milliseconds."""
    session = requests.Session()
    headers = {"X-Api-Key": KEYS["read-only"]}
    probe = StatusProbe(base)
    probe.start()
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        reply = session.get(f"{base}/vm", params={"limit": limit}, headers=headers, timeout=600)
        samples.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, reply.text
    return samples, probe.stop()


def bench_limit(base: str, vm_count: int, seconds: float) -> tuple[float, float]:
    """/status alone, then beside a benign and the pathological limit; (limit p50, status p99)."""
    headers = {"X-Api-Key": KEYS["read-only"]}
    requests.get(f"{base}/vm", headers=headers, timeout=60).raise_for_status()  # builds the VM list once
    baseline = StatusProbe(base)
    baseline.start()
    time.sleep(seconds)
    print(f"GET /status alone: {summary(baseline.stop())}")
    for label, limit in (("benign", "^web"), ("pathological", PATHOLOGICAL)):
        samples, status = hammer(base, limit, seconds)
        print(f"GET /vm?limit={limit} ({label}) over {vm_count} VMs, back to back: {summary(samples)}")
        print(f"  GET /status meanwhile: {summary(status)}")
    too_long = requests.get(f"{base}/vm", params={"limit": "a" * 257}, headers=headers, timeout=10)
    print(f"a 257-character limit: {too_long.status_code} {too_long.json()['message']!r}")
    return statistics.median(samples), percentile(status, 0.99)


def hold_waits(base: str, waits: int, wait_timeout: float, phase: int) -> list[tuple[int, float, str]]:
    """``waits`` concurrent wait=true requests no daemon carries out: (status, seconds, message) of each.

    Half stop a started VM, half flush a node; ``phase`` picks VMs and nodes not asked before.
    """
    headers = {"X-Api-Key": KEYS["operator"]}

    def one(i: int) -> tuple[int, float, str]:
        if i % 2:  # every fourth VM is a started one (bench.vm_list.populate_vms)
            path, data = f"/vm/vm-{4 * (i + phase * waits):05d}/state", {"state": "stop", "wait": "true"}
        else:
            node = i // 2 + phase * waits // 2
            path, data = f"/node/node{node:03d}/domain-state", {"state": "flush", "wait": "true"}
        started = time.perf_counter()
        reply = requests.post(f"{base}{path}", data=data, headers=headers, timeout=wait_timeout + 60)
        return reply.status_code, time.perf_counter() - started, reply.json()["message"]

    with ThreadPoolExecutor(waits) as pool:
        return list(pool.map(one, range(waits)))


def bench_waits(base: str, pid: int, waits: int, wait_timeout: float) -> float:
    """``waits`` concurrent wait=true requests, alone (CPU) then with a probe on /status; the status p99."""
    cpu_before, started = cpu_seconds(pid), time.perf_counter()
    results = hold_waits(base, waits, wait_timeout, 0)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    held = [seconds for code, seconds, message in results if code == 202 and "not finished" in message]
    at_once = [message for code, _, message in results if code == 202 and "not waited" in message]
    other = [(code, message) for code, _, message in results if code != 202]
    print(
        f"{waits} concurrent wait=true (api.limits.wait_timeout {wait_timeout:g} s): {len(held)} held "
        f"{min(held, default=0):.2f}-{max(held, default=0):.2f} s then 202, {len(at_once)} answered 202 "
        f"at once (no free wait slot), {len(other)} other {other[:2]}"
    )
    print(f"pvcapid CPU while holding them: {cpu:.2f} s over {elapsed:.1f} s ({100 * cpu / elapsed:.1f} %)")
    probe = StatusProbe(base)
    probe.start()
    hold_waits(base, waits, wait_timeout, 1)
    status = probe.stop()
    print(f"GET /status while {waits} more are held: {summary(status)}")
    return percentile(status, 0.99)


def verdict(value: float, target: float) -> str:
    return f"{value:.2f} ms {'meets' if value <= target else 'misses'} the {target:g} ms target"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--waits", type=int, default=64)
    parser.add_argument("--wait-timeout", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each /status sample")
    args = parser.parse_args()
    print(f"load average before: {Path('/proc/loadavg').read_text().split()[0]} on {os.cpu_count()} CPUs")
    print(f"Python re rejecting one UUID with that limit (the old engine): {python_re_reference():.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)  # pvcapid runs as its unprivileged account
        auth_file = Path(tmp) / "zookeeper.auth"
        auth_file.write_text(":".join(CREDENTIAL) + "\n")
        auth_file.chmod(0o600)
        ref, member = zookeeper.start_standalone(Path(tmp), heap_mb=ZOOKEEPER_HEAP_MB)
        api = None
        try:
            store = Store(f"127.0.0.1:{member.client_port}", timeout=10, credential=CREDENTIAL)
            store.start()
            ensure_schema(store)
            populate(store, args.nodes)
            populate_vms(store, args.vms, args.nodes)
            store.stop()
            port = zookeeper.free_port()
            config = Path(tmp) / "pvc.conf"
            data = node_config(member.client_port, port, args.wait_timeout, Path(tmp))
            config.write_text(yaml.safe_dump(data))
            api = processes.spawn(
                "pvcapid",
                [sys.executable, "-m", "pvc.api.daemon"],
                Path(tmp) / "pvcapid.log",
                env={**os.environ, "PVC_CONFIG_FILE": str(config)},
            )
            base = f"http://127.0.0.1:{port}/api/v1"
            deadline = time.monotonic() + 60
            while True:
                try:
                    requests.get(f"{base}/", timeout=1)
                    break
                except (requests.ConnectionError, requests.Timeout):
                    if time.monotonic() > deadline or not processes.is_alive(api):
                        raise SystemExit((Path(tmp) / "pvcapid.log").read_text()) from None
                    time.sleep(0.2)
            limit_ms, limit_status = bench_limit(base, args.vms, args.seconds)
            wait_status = bench_waits(base, api.pid, args.waits, args.wait_timeout)
        finally:
            if api is not None:
                processes.terminate([api])
            processes.terminate([ref])
    print(f"pathological limit: p50 {verdict(limit_ms, LIMIT_TARGET_MS)}")
    print(f"GET /status p99 during it: {verdict(limit_status, STATUS_P99_TARGET_MS)}")
    print(f"GET /status p99 during {args.waits} waits: {verdict(wait_status, STATUS_P99_TARGET_MS)}")


if __name__ == "__main__":
    main()
