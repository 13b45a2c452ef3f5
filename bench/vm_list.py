"""API VM list from the cache: ``GET /api/v1/vm`` with 5,000 VMs across 100 nodes.

Target: p50 <= 50 ms for the full list (served from the watched cache). Starts a
standalone ZooKeeper, writes the node records (``bench.api_latency.populate``) and the
VMs (small real domain XML, mixed states, tags; per-VM statistics in the keepalives of
the nodes running them) in batched transactions, then serves the API app with
werkzeug's threaded server on loopback and times requests over HTTP with one keep-alive
client. Prints p50/p95/max in milliseconds per URL, the first (cold) request apart, the
ZooKeeper requests made while reading, the list again while every node sends keepalives
at the default interval (new statistics to serialise), and the first list after one VM's
state changes (checked to show the change).

Run: .venv/bin/python -m bench.vm_list [--vms 5000] [--nodes 100] [--requests 50]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import tempfile
import threading
import time
import uuid as uuid_mod
from dataclasses import replace
from pathlib import Path

from werkzeug.serving import make_server

from bench.api_latency import CREDENTIAL, bench_context, local_client, populate, raw_get, report, timed
from pvc import processes
from pvc.api.app import create_app
from pvc.client.http import ApiClient
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.config import DEFAULT_KEEPALIVE_INTERVAL
from pvc.domain_xml.build import DomainSpec, build
from pvc.lab import zookeeper
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.records import Keepalive, encode
from pvc.state.schema import ensure_schema
from pvc.state.states import MigrationMethod, Selector, VMState
from pvc.state.store import Store, Transaction
from pvc.state.vms import VmMeta, VmPlacement, update_placement

TARGET_MS = 50.0
#: ZooKeeper heap. With the lab's 64 MB (pvc.lab.zookeeper.JVM_FLAGS) the server runs out of
#: memory while a fresh cache loads the ~30,000 znodes of 5,000 VMs.
ZOOKEEPER_HEAP_MB = 512
#: Bytes per transaction: well under ZooKeeper's 1 MB request limit (jute.maxbuffer).
BATCH_BYTES = 512 * 1024
#: Rough per-operation framing overhead of a multi-op request, in bytes.
OP_OVERHEAD = 64
#: Seconds between two keepalives of a node (pvc.config.DEFAULT_KEEPALIVE_INTERVAL).
KEEPALIVE_INTERVAL = DEFAULT_KEEPALIVE_INTERVAL
TAGS = ("web", "db", "batch", "prod", "staging", "backup")


class Batcher:
    """Collects creates and sets into transactions of at most BATCH_BYTES, committing as it goes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.txn = Transaction()
        self.size = 0
        self.commits = 0

    def _add(self, size: int) -> None:
        if self.txn.ops and self.size + size > BATCH_BYTES:
            self.flush()
        self.size += size

    def create(self, path: str, value: bytes | str) -> None:
        data = value.encode() if isinstance(value, str) else value
        self._add(len(path) + len(data) + OP_OVERHEAD)
        self.txn.create(path, data)

    def set(self, path: str, value: bytes) -> None:
        self._add(len(path) + len(value) + OP_OVERHEAD)
        self.txn.set(path, value)

    def flush(self) -> None:
        if self.txn.ops:
            self.store.commit(self.txn)
            self.commits += 1
        self.txn = Transaction()
        self.size = 0


def vm_stats(rng: random.Random, memory_mib: int, now: float) -> dict:
    """Live figures of one running VM, shaped as a node's keepalive carries them."""
    actual = memory_mib * 1024
    return {
        "memory": {
            "actual": actual,
            "swap_in": 0,
            "swap_out": 0,
            "major_fault": rng.randrange(1000),
            "minor_fault": rng.randrange(10**6),
            "unused": actual // 2,
            "available": actual - 1024,
            "usable": actual // 2 + rng.randrange(1024),
            "last_update": int(now),
            "rss": actual // 2 + rng.randrange(actual // 4),
        },
        "vcpu": {
            "cpu_time": rng.randrange(10**12),
            "user_time": rng.randrange(10**11),
            "system_time": rng.randrange(10**10),
        },
        "nics": {
            "0": {
                "rd_bytes": rng.randrange(10**10),
                "rd_packets": rng.randrange(10**7),
                "rd_errors": 0,
                "rd_drops": rng.randrange(10),
                "wr_bytes": rng.randrange(10**10),
                "wr_packets": rng.randrange(10**7),
                "wr_errors": 0,
                "wr_drops": 0,
            }
        },
        "disks": {
            "vda": {
                "rd_req": rng.randrange(10**6),
                "rd_bytes": rng.randrange(10**11),
                "wr_req": rng.randrange(10**6),
                "wr_bytes": rng.randrange(10**11),
            }
        },
    }


def populate_vms(store: Store, vm_count: int, node_count: int) -> tuple[dict[str, str], dict[str, Keepalive]]:
    """Write ``vm_count`` VMs spread over the nodes, and the nodes' keepalives.

    Returns the VMs' UUIDs by name and the keepalives by node.

    Three in four VMs are started (``running_on`` set, statistics in their node's
    keepalive), the rest stopped. The znodes are those :func:`pvc.state.vms.create_vm`
    writes, batched many VMs to a transaction.
    """
    rng = random.Random(7)
    now = time.time()
    batch = Batcher(store)
    uuids: dict[str, str] = {}
    running: dict[str, dict[str, dict]] = {f"node{n:03d}": {} for n in range(node_count)}
    allocated = {node: [0, 0] for node in running}  # vCPUs, MiB of running VMs
    provisioned = dict.fromkeys(running, 0)
    keepalives: dict[str, Keepalive] = {}
    for i in range(vm_count):
        name = f"vm-{i:05d}"
        node = f"node{i % node_count:03d}"
        uuid = str(uuid_mod.UUID(int=rng.getrandbits(128), version=4))
        vcpus = rng.choice((1, 2, 2, 4, 8))
        memory_mib = rng.choice((512, 1024, 2048, 4096, 8192))
        xml = build(
            DomainSpec(
                name=name,
                vcpus=vcpus,
                memory_mib=memory_mib,
                uuid=uuid,
                domain_type="kvm",
                disks=[f"/var/lib/pvc/vms/{name}/disk0.raw"],
                bridges=[f"vmbr{100 + i % 8}"],
            )
        )
        tags = [
            {"name": tag, "type": "user", "protected": tag == "prod"}
            for tag in sorted(rng.sample(TAGS, rng.randrange(3)))
        ]
        started = i % 4 != 3
        meta = VmMeta(
            name=name,
            uuid=uuid,
            vcpus=vcpus,
            memory_mib=memory_mib,
            node_selector=Selector.MEM,
            node_autostart=started,
            migration_method=MigrationMethod.LIVE,
            tags=tags,
            description=f"benchmark VM {i}",
        )
        placement = VmPlacement(
            state=VMState.START if started else VMState.STOP,
            node=node,
            running_on=node if started else "",
            changed=now,
        )
        batch.create(paths.domain_name(name), uuid)
        batch.create(paths.domain(uuid), encode(meta))
        batch.create(paths.domain_xml(uuid), xml)
        batch.create(paths.domain_state(uuid), encode(placement))
        batch.create(paths.domain_console(uuid), b"")
        uuids[name] = uuid
        provisioned[node] += memory_mib
        if started:
            running[node][uuid] = vm_stats(rng, memory_mib, now)
            allocated[node][0] += vcpus
            allocated[node][1] += memory_mib
    for node, stats in running.items():
        keepalive = Keepalive(
            timestamp=now,
            load=1.5,
            memory={"total": 256000, "used": 100000, "free": 156000},
            domains=sorted(stats),
            vcpu_allocated=allocated[node][0],
            memory_allocated=allocated[node][1],
            memory_provisioned=provisioned[node],
            vm_stats=stats,
        )
        batch.set(paths.node_keepalive(node), encode(keepalive))
        keepalives[node] = keepalive
    batch.flush()
    print(f"wrote {vm_count} VMs and {node_count} keepalives in {batch.commits} transactions")
    return uuids, keepalives


class KeepaliveWriter(threading.Thread):
    """Re-sends every node's keepalive each KEEPALIVE_INTERVAL, spread evenly, as running nodes do.

    Uses a store of its own, so the API's store counts only the API's requests.
    """

    def __init__(self, hosts: str, keepalives: dict[str, Keepalive]) -> None:
        super().__init__(daemon=True)
        self.store = Store(hosts, timeout=10, credential=CREDENTIAL)
        self.keepalives = keepalives
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        self.store.start()
        pause = KEEPALIVE_INTERVAL / len(self.keepalives)
        try:
            while not self.stopping.is_set():
                for node, keepalive in self.keepalives.items():
                    if self.stopping.wait(pause):
                        break
                    self.store.set(
                        paths.node_keepalive(node), encode(replace(keepalive, timestamp=time.time()))
                    )
                    self.sent += 1
        finally:
            self.store.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref, member = zookeeper.start_standalone(Path(tmp), heap_mb=ZOOKEEPER_HEAP_MB)
        try:
            run(f"127.0.0.1:{member.client_port}", args.vms, args.nodes, args.requests)
        finally:
            processes.terminate([ref])


def run(hosts: str, vm_count: int, node_count: int, count: int) -> None:
    store = Store(hosts, timeout=10, credential=CREDENTIAL)
    store.start()
    ensure_schema(store)
    started = time.perf_counter()
    populate(store, node_count)
    uuids, keepalives = populate_vms(store, vm_count, node_count)
    print(f"populate: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    cache = ClusterCache(store, API_ROOTS)
    cache.start()
    if not cache.wait_ready(120):
        raise SystemExit("the cache did not load")
    print(f"cache load: {time.perf_counter() - started:.1f} s")
    server = None
    try:
        app = create_app(bench_context(Cluster(store, cache)))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = local_client(server.server_port)
        steady = measure(store, client, uuids, count)
        churn = measure_churn(store, hosts, client, keepalives, count)
        measure_change(store, cache, client, uuids)
    finally:
        if server is not None:
            server.shutdown()
        cache.close()
        store.stop()
    verdict = "meets" if steady <= TARGET_MS else "misses"
    print(
        f"GET /vm with {vm_count} VMs on {node_count} nodes: p50 {steady:.1f} ms {verdict} the "
        f"{TARGET_MS:.0f} ms target ({churn:.1f} ms while keepalives arrive)"
    )


def timed_full(client: ApiClient, path: str, count: int) -> tuple[list[float], list[float]]:
    """Milliseconds to the response headers (the server's work) and to the whole body, per request."""
    headers, full = [], []
    for _ in range(count):
        started = time.perf_counter()
        response = raw_get(client, path, stream=True)
        headers.append((time.perf_counter() - started) * 1000)
        response.content  # noqa: B018 (reads the body)
        full.append((time.perf_counter() - started) * 1000)
    return headers, full


def measure(store: Store, client: ApiClient, uuids: dict[str, str], count: int) -> float:
    """Time the list, two filtered lists and one VM, all served from the cache; returns the list's p50."""
    one = sorted(uuids)[len(uuids) // 2]
    targets = [
        ("GET /vm?node=node007", "/vm?node=node007"),
        ("GET /vm?state=stop&limit=vm-01", "/vm?state=stop&limit=vm-01"),
        (f"GET /vm/{one}", f"/vm/{one}"),
    ]
    ops_before = store.operations
    started = time.perf_counter()
    response = raw_get(client, "/vm")
    cold_ms = (time.perf_counter() - started) * 1000
    body = response.content
    listed = response.json()
    assert len(listed) == len(uuids), f"listed {len(listed)} VMs, wrote {len(uuids)}"
    assert sum(1 for vm in listed if vm["memory_stats"]["actual"]) == sum(
        1 for vm in listed if vm["state"] == VMState.START
    ), "every started VM shows its statistics"
    print(f"GET /vm cold (first request, builds every entry): {cold_ms:.0f} ms")
    print(f"GET /vm body: {len(body) / 1e6:.2f} MB ({len(body) // len(listed)} bytes per VM)")
    matched = []
    for _, path in targets:  # warm them, and count what they answer
        matched.append(len(client.get(path).expect(200)))
    headers, full = timed_full(client, "/vm", count)
    report(f"GET /vm ({len(uuids)} VMs)", full)
    report("  of which to the response headers (server work)", headers)
    for (label, path), vms in zip(targets, matched, strict=True):
        report(f"{label} ({vms} VMs)", timed(client, path, count))
    print(f"ZooKeeper requests made by these reads: {store.operations - ops_before}")
    return statistics.median(full)


def measure_churn(
    store: Store, hosts: str, client: ApiClient, keepalives: dict[str, Keepalive], count: int
) -> float:
    """Time the list while each node sends a keepalive every KEEPALIVE_INTERVAL; returns its p50."""
    writer = KeepaliveWriter(hosts, keepalives)
    writer.start()
    try:
        time.sleep(KEEPALIVE_INTERVAL)  # let every node's keepalive change once
        ops_before = store.operations
        headers, full = timed_full(client, "/vm", count)
        ops = store.operations - ops_before
    finally:
        writer.stop()
    rate = len(keepalives) / KEEPALIVE_INTERVAL
    report(f"GET /vm while keepalives arrive ({rate:.0f}/s, {writer.sent} sent)", full)
    report("  of which to the response headers (server work)", headers)
    print(f"ZooKeeper requests made by these reads: {ops}")
    return statistics.median(full)


def measure_change(store: Store, cache: ClusterCache, client: ApiClient, uuids: dict[str, str]) -> None:
    """One VM's state changes: the next list must show it, rebuilding only that VM's entry."""
    listed = client.get("/vm").expect(200)
    changed = next(name for name in sorted(uuids) if listed_state(listed, name) == VMState.START)
    uuid = uuids[changed]
    started = time.perf_counter()
    wanted, commit = update_placement(store, uuid, lambda p: replace(p, state=VMState.SHUTDOWN))
    assert wanted is not None
    committed = time.perf_counter()
    if not cache.wait_for(commit, 10):
        raise SystemExit("the cache did not see the change within 10 s")
    seen = time.perf_counter()
    response = raw_get(client, "/vm")
    after = time.perf_counter()
    state = listed_state(response.json(), changed)
    assert state == VMState.SHUTDOWN, f"{changed} is listed as '{state}' after the change"
    print(
        f"after changing {changed}'s state: update {(committed - started) * 1000:.1f} ms, "
        f"cache saw it {(seen - committed) * 1000:.1f} ms later, "
        f"next GET /vm {(after - seen) * 1000:.1f} ms (shows state '{state}')"
    )


def listed_state(listed: list[dict], name: str) -> str | None:
    return next((vm["state"] for vm in listed if vm["name"] == name), None)


if __name__ == "__main__":
    main()
