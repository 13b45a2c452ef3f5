"""ZooKeeper requests per keepalive per node, counted at the kazoo client.

Three node daemons (threads) run against one standalone ZooKeeper for a while; every
request each one's kazoo client sends is counted by type (pings excluded). Prints
writes and reads per keepalive per node.

Run: .venv/bin/python -m bench.keepalive_ops [--seconds 20] [--interval 1]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import threading
import time
from pathlib import Path

from bench.api_latency import CREDENTIAL
from pvc import processes
from pvc.config import parse_config
from pvc.lab import zookeeper
from pvc.node.loop import NodeLoop
from pvc.state.store import Store

WRITES = {"Transaction", "SetData", "Create", "Delete"}


def _config(name: str, hosts: str, interval: float, index: int):
    net = lambda n: {"address": f"10.{n}.0.{index}/24"}  # noqa: E731 - config only, never configured on a link
    return parse_config(
        {
            "node": {"name": name},
            "coordinators": ["n1", "n2", "n3"],
            "zookeeper": {"hosts": [hosts], "session_timeout": 3},
            "networks": {"upstream": net(100), "cluster": net(110), "storage": net(120)},
            "timers": {"keepalive_interval": interval, "fence_intervals": 6},
        }
    )


def _count(store: Store, counter: collections.Counter) -> None:
    original = store.client._call

    def counting(request, async_object):
        counter[type(request).__name__] += 1
        return original(request, async_object)

    store.client._call = counting


def measure(seconds: float, interval: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ref, member = zookeeper.start_standalone(Path(tmp))
        try:
            hosts = f"127.0.0.1:{member.client_port}"
            loops, counters, threads = [], [], []
            for i, name in enumerate(("n1", "n2", "n3"), start=1):
                store = Store(hosts, timeout=3, credential=CREDENTIAL)
                store.start()
                loop = NodeLoop(_config(name, hosts, interval, i), store)
                loop.start()
                loops.append(loop)
            for loop in loops:
                thread = threading.Thread(target=loop.run, daemon=True)
                thread.start()
                threads.append(thread)
            time.sleep(3 * interval)  # settle: election and first cache loads happen here
            start_counts = []
            for loop in loops:
                counter: collections.Counter = collections.Counter()
                _count(loop.store, counter)
                counters.append(counter)
                start_counts.append(loop.keepalives)
            time.sleep(seconds)
            results = []
            for loop, counter, started in zip(loops, counters, start_counts, strict=True):
                snapshot = dict(counter)  # taken before shutdown traffic
                keepalives = loop.keepalives - started
                writes = sum(v for k, v in snapshot.items() if k in WRITES)
                reads = sum(v for k, v in snapshot.items() if k not in WRITES)
                results.append((loop.name, keepalives, writes, reads, snapshot))
            for loop in loops:
                loop.request_stop()
            for thread in threads:
                thread.join(10)
        finally:
            processes.terminate([ref])
    return {"results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    report = measure(args.seconds, args.interval)
    print(f"ZooKeeper requests per keepalive per node ({args.seconds:g} s, interval {args.interval:g} s):")
    for name, keepalives, writes, reads, snapshot in report["results"]:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(snapshot.items()))
        print(
            f"  {name}: {keepalives} keepalives, writes/keepalive {writes / keepalives:.2f}, "
            f"reads/keepalive {reads / keepalives:.2f}  ({detail})"
        )


if __name__ == "__main__":
    main()
