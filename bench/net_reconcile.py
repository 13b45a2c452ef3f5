"""Client-network link reconcile: 200 managed networks from nothing, then again with nothing to do.

Target: <= 10 s from empty. Makes a fresh network namespace with a veth underlay carrying
an address, then times :func:`pvc.node.net_links.reconcile` over pyroute2 in it: every
network from nothing (a bridge and a VXLAN each), a second pass that must change nothing
(adoption), one MTU change on every network, and removing them all. The namespace is
deleted at the end; nothing outside it is touched.

Run: .venv/bin/python -m bench.net_reconcile [--networks 200]
"""

from __future__ import annotations

import argparse
import time
import uuid

from pvc.net import links
from pvc.net.iproute import ip
from pvc.net.netspec import NetKind, NetworkSpec, NodeNetParams
from pvc.node.net_links import Reconciled, reconcile

TARGET_S = 10.0
FIRST_VNI = 10000
UNDERLAY = "10.79.0.1"  # only ever inside the bench's own namespace


def _pass(label: str, specs: list[NetworkSpec], params: NodeNetParams, ipr) -> tuple[float, Reconciled]:
    started = time.perf_counter()
    done = reconcile(specs, params, ipr=ipr)
    seconds = time.perf_counter() - started
    if not done.ok:
        raise SystemExit(f"{label}: {done.failed[0]}")
    print(f"{label}: {seconds:.3f} s ({len(done.changed)} actions)")
    return seconds, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=200)
    args = parser.parse_args()

    netns = f"pvc-bench-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", netns)
    try:
        ip("link", "set", "lo", "up", netns=netns)
        ip("link", "add", "under0", "type", "veth", "peer", "name", "under0p", netns=netns)
        ip("addr", "add", f"{UNDERLAY}/24", "dev", "under0", netns=netns)
        ip("link", "set", "under0", "up", netns=netns)
        params = NodeNetParams("under0p", None, UNDERLAY, "under0")
        vnis = range(FIRST_VNI, FIRST_VNI + args.networks)
        specs = [NetworkSpec(vni, NetKind.MANAGED) for vni in vnis]
        with links.open_netlink(netns) as ipr:
            print(f"{args.networks} managed networks in namespace {netns}:")
            started = time.perf_counter()
            links.observe(ipr)
            print(f"observe (empty): {time.perf_counter() - started:.3f} s")
            created, _ = _pass("from empty", specs, params, ipr)
            started = time.perf_counter()
            observed = links.observe(ipr)
            print(f"observe ({len(observed)} links): {time.perf_counter() - started:.3f} s")
            idle, again = _pass("no-op", specs, params, ipr)
            if again.applied:
                raise SystemExit(f"the second pass changed {len(again.applied)} links")
            _pass("MTU change", [NetworkSpec(vni, NetKind.MANAGED, 1400) for vni in vnis], params, ipr)
            _pass("remove all", [], params, ipr)
        verdict = "within" if created <= TARGET_S else "OVER"
        print(f"from empty {created:.3f} s: {verdict} the {TARGET_S:g} s target; no-op {idle:.3f} s")
    finally:
        ip("netns", "del", netns, check=False)


if __name__ == "__main__":
    main()
