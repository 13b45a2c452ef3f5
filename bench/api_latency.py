"""API read latency from the watched cache: ``GET /status`` and ``GET /node`` with 100 nodes.

Starts a standalone ZooKeeper, writes 100 node records, then serves the API app with
gunicorn-like threading (werkzeug's threaded server) on loopback and times requests
over HTTP with one keep-alive client. Prints p50/p95/max in milliseconds.

Run: .venv/bin/python -m bench.api_latency [--nodes 100] [--requests 300]
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from werkzeug.serving import make_server

from pvc import __version__, processes
from pvc.api.app import create_app
from pvc.api.context import ApiContext
from pvc.client.connections import Connection
from pvc.client.http import ApiClient
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.config import ApiSection
from pvc.lab import zookeeper
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.records import Keepalive, NodeStatic, encode
from pvc.state.schema import ensure_schema
from pvc.state.store import Store, Transaction

USER_AGENT = f"pvc-bench/{__version__}"
#: The API key the benches' in-process APIs require.
BENCH_KEY = "bench-admin-key-0123456789abcdef0123"

#: The benches authenticate as the daemons do (digest credential, ACLs on every znode).
CREDENTIAL = ("bench", secrets.token_urlsafe(16))


def populate(store: Store, count: int) -> None:
    for i in range(count):
        name = f"node{i:03d}"
        txn = Transaction()
        txn.create(paths.node(name), encode(NodeStatic(name=name, mode="hypervisor", cpu_count=32)))
        txn.create(paths.node_daemon_state(name), "run")
        txn.create(paths.node_coordinator_state(name), "client")
        txn.create(paths.node_domain_state(name), "ready")
        memory = {"total": 256000, "used": 100000, "free": 156000}
        txn.create(
            paths.node_keepalive(name), encode(Keepalive(timestamp=time.time(), load=1.5, memory=memory))
        )
        store.commit(txn)


def bench_context(cluster: Cluster) -> ApiContext:
    """An API context that requires :data:`BENCH_KEY`, as a production API does."""
    return ApiContext(cluster=cluster, settings=ApiSection.model_validate({"token": [{"token": BENCH_KEY}]}))


def local_client(port: int) -> ApiClient:
    """A client (one keep-alive session, the bench key) of the API served on loopback ``port``."""
    connection = Connection(name="bench", host="127.0.0.1", port=port, api_key=BENCH_KEY)
    return ApiClient(connection, user_agent=USER_AGENT)


def raw_get(client: ApiClient, path: str, stream: bool = False) -> requests.Response:
    """``GET path`` with the client's URL, headers and keep-alive session, the reply left undecoded:
    the benches time the HTTP exchange alone, without the client's JSON decoding."""
    response = client.session.get(client.url(path), headers=client.headers(), stream=stream)
    response.raise_for_status()
    return response


def timed(client: ApiClient, path: str, count: int) -> list[float]:
    """Milliseconds per ``GET path`` (the whole body received), ``count`` times."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        raw_get(client, path)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(
        f"{label}: p50 {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms, max {ordered[-1]:.2f} ms "
        f"({len(ordered)} requests)"
    )


@contextmanager
def standalone_cluster() -> Iterator[Cluster]:
    """A standalone ZooKeeper in a temporary directory, with PVC's schema, as a Cluster (a
    store with the bench credential and a ready cache); everything stopped after."""
    with tempfile.TemporaryDirectory() as tmp:
        ref, member = zookeeper.start_standalone(Path(tmp))
        try:
            store = Store(f"127.0.0.1:{member.client_port}", timeout=5, credential=CREDENTIAL)
            store.start()
            ensure_schema(store)
            cache = ClusterCache(store, API_ROOTS)
            cache.start()
            cache.wait_ready(30)
            try:
                yield Cluster(store, cache)
            finally:
                cache.close()
                store.stop()
        finally:
            processes.terminate([ref])


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with standalone_cluster() as cluster:
        store = cluster.store
        populate(store, args.nodes)
        app = create_app(bench_context(cluster))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        client = local_client(server.server_port)
        wait_nodes = time.monotonic() + 30
        while len(client.get("/node").expect(200)) != args.nodes and time.monotonic() < wait_nodes:
            time.sleep(0.1)  # the cache catching up with the nodes just written
        assert len(client.get("/node").expect(200)) == args.nodes
        ops_before = store.operations
        timed(client, "/status", 20)  # warm up
        report("GET /status", timed(client, "/status", args.requests))
        report(f"GET /node ({args.nodes} nodes)", timed(client, "/node", args.requests))
        print(f"ZooKeeper requests made by these reads: {store.operations - ops_before}")
        server.shutdown()


if __name__ == "__main__":
    main()
