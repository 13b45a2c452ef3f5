"""Metadata service lookups with many VMs: which VM is asking, per request.

Starts a standalone ZooKeeper with one managed network and ``--vms`` VMs on it, each with
a DHCP lease, then asks the metadata app (Flask's test client, no HTTP) for
``meta-data/instance-id`` from VMs' addresses. Prints p50/p95/max in milliseconds with the
VMs' NICs remembered per definition (how the service runs) and with the cache's memory of
decoded records cleared before each request (every definition parsed again: the first
request after a start), and the ratio of the two p50s.

Target: p50 <= 20 ms with 2,000 VMs (remembered).

Run: .venv/bin/python -m bench.metadata_lookup [--vms 2000] [--requests 200]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import uuid as uuid_mod

from bench.api_latency import report, standalone_cluster
from bench.vm_list import Batcher
from pvc.cluster.network import actions
from pvc.cluster.session import Cluster
from pvc.domain_xml.build import DomainSpec, build
from pvc.metadata.app import create_metadata_app
from pvc.metadata.limits import SourceLimiter
from pvc.state import networks, paths
from pvc.state.cache import ClusterCache
from pvc.state.records import encode
from pvc.state.vms import VmMeta, VmPlacement

TARGET_MS = 20.0
VNI = 100
NETWORK = {"domain": "bench.lab", "ip4_network": "10.100.0.0/16", "ip4_gateway": "10.100.0.1"}


def mac_of(index: int) -> str:
    return f"52:54:00:64:{index // 256:02x}:{index % 256:02x}"


def address_of(index: int) -> str:
    return f"10.100.{10 + index // 250}.{1 + index % 250}"


def populate(cluster: Cluster, count: int) -> None:
    """``count`` VMs with one NIC each on network VNI, and a lease for each."""
    actions.add_network(cluster, VNI, "bench", "managed", **NETWORK)
    batch = Batcher(cluster.store)
    for index in range(count):
        name = f"vm-{index:05d}"
        uuid = str(uuid_mod.UUID(int=index + 1, version=4))
        xml = build(DomainSpec(name=name, uuid=uuid, bridges=[f"vmbr{VNI}"], macs=[mac_of(index)]))
        meta = VmMeta(name=name, uuid=uuid, vcpus=1, memory_mib=512)
        batch.create(paths.domain_name(name), uuid)
        batch.create(paths.domain(uuid), encode(meta))
        batch.create(paths.domain_xml(uuid), xml)
        batch.create(paths.domain_state(uuid), encode(VmPlacement(node="hv1")))
        batch.create(paths.domain_console(uuid), b"")
    batch.flush()
    for index in range(count):
        networks.put_lease(cluster.store, VNI, mac_of(index), address_of(index), hostname=f"vm-{index:05d}")


def timed(client, cache: ClusterCache, count: int, vms: int, *, forget: bool) -> list[float]:
    """Milliseconds per request from a different VM's address each time."""
    samples = []
    for request in range(count):
        index = (request * 7919) % vms
        if forget:
            cache.forget_parsed()
        started = time.perf_counter()
        reply = client.get("/latest/meta-data/instance-id", environ_base={"REMOTE_ADDR": address_of(index)})
        samples.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, reply.get_data(as_text=True)
    return samples


def main() -> None:
    logging.getLogger("pvc").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with standalone_cluster() as cluster:
        populate(cluster, args.vms)
        wire = {address_of(i): mac_of(i) for i in range(args.vms)}
        limiter = SourceLimiter(rate=1e9, burst=10**9)  # the lookup is measured, not the limit
        client = create_metadata_app(cluster, None, wire_mac=wire.get, limiter=limiter).test_client()
        time.sleep(1.0)  # the cache has every lease
        cache = cluster.cache
        timed(client, cache, 5, args.vms, forget=False)  # warm up
        remembered = timed(client, cache, args.requests, args.vms, forget=False)
        parsed = timed(client, cache, max(10, args.requests // 10), args.vms, forget=True)
        report(f"remembered definitions ({args.vms} VMs)", remembered)
        report(f"every definition parsed ({args.vms} VMs)", parsed)
        ratio = statistics.median(parsed) / statistics.median(remembered)
        verdict = "met" if statistics.median(remembered) <= TARGET_MS else "MISSED"
        print(f"parsed / remembered p50: {ratio:.1f}x; target p50 <= {TARGET_MS:g} ms: {verdict}")


if __name__ == "__main__":
    main()
