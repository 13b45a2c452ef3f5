"""Client networks in a real lab: how soon a new network is usable, gateway continuity over a
primary move, and many networks.

Brings up its own lab (no Ceph) and prints:
1. API call -> bridge, VXLAN and EVPN flood entries present on every node (target <= 2 s);
2. a client on a non-primary node pinging its network's gateway every 100 ms over VXLAN
   while the primary moves: the longest gap between replies (target <= 3 s);
3. ``--networks N`` (default 200) more managed networks: how long until every node carries
   all of them and until the primary serves them all (gateways and dnsmasq), and the node
   daemons' CPU use while idle afterwards (target <= 1 %).
Run: .venv/bin/python -m bench.net_lab [--networks 200] [--idle 30]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

from bench.labs import own_lab, pvc_lab
from pvc.lab import endpoint
from pvc.lab.cluster import LabState
from pvc.lab.layout import LabLayout

PREFIX, NET_INDEX = "pvcbn", 81
VNI = 500
CLIENT_NS = "pvcbn-client"
TICKS = os.sysconf("SC_CLK_TCK")


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True).stdout


def in_node(layout: LabLayout, node: str, *argv: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", layout.netns(node), *argv, check=check)


def link_names(layout: LabLayout, node: str) -> set[str]:
    return {link["ifname"] for link in json.loads(in_node(layout, node, "ip", "-j", "link", "show"))}


def flood_peers(layout: LabLayout, node: str, vni: int) -> int:
    out = in_node(layout, node, "bridge", "-j", "fdb", "show", "dev", f"vxlan{vni}", check=False)
    return sum(1 for e in json.loads(out or "[]") if e.get("mac") == "00:00:00:00:00:00")


def primary_of(client) -> str:
    nodes = endpoint.accepted(client.get("/node"), "nodes")
    return next(node["name"] for node in nodes if node["coordinator_state"] == "primary")


def add_network(client, vni: int, subnet: int) -> None:
    endpoint.accepted(
        client.post(
            "/network",
            data={
                "vni": vni,
                "description": f"net{vni}",
                "nettype": "managed",
                "domain": f"net{vni}.bench",
                "ip4_network": f"10.{200 + subnet // 250}.{subnet % 250}.0/24",
                "ip4_gateway": f"10.{200 + subnet // 250}.{subnet % 250}.1",
                "dhcp4": "true",
                "dhcp4_start": f"10.{200 + subnet // 250}.{subnet % 250}.100",
                "dhcp4_end": f"10.{200 + subnet // 250}.{subnet % 250}.199",
            },
        ),
        f"add network {vni}",
    )


def usable_after_add(layout: LabLayout, client) -> None:
    started = time.monotonic()
    add_network(client, VNI, 0)
    peers = len(layout.node_names) - 1
    pending = set(layout.node_names)
    while pending:
        for node in sorted(pending):
            if {f"vmbr{VNI}", f"vxlan{VNI}"} <= link_names(layout, node) and flood_peers(
                layout, node, VNI
            ) == peers:
                pending.discard(node)
        time.sleep(0.02)
    print(
        f"new network usable on every node: {time.monotonic() - started:.2f} s after the API call",
        "(target <= 2 s)",
    )


def gateway_continuity(layout: LabLayout, client) -> None:
    primary = primary_of(client)
    others = [n for n in layout.node_names if n != primary]
    host, target = others[0], others[1]
    sh("ip", "netns", "add", CLIENT_NS)
    try:
        sh("ip", "link", "add", "pvcbnc0", "type", "veth", "peer", "name", "pvcbnc1")
        sh("ip", "link", "set", "pvcbnc0", "netns", layout.netns(host))
        sh("ip", "link", "set", "pvcbnc1", "netns", CLIENT_NS)
        in_node(layout, host, "ip", "link", "set", "pvcbnc0", "master", f"vmbr{VNI}", "up")
        for argv in (
            ("ip", "link", "set", "lo", "up"),
            ("ip", "addr", "add", "10.200.0.9/24", "dev", "pvcbnc1"),
            ("ip", "link", "set", "pvcbnc1", "up"),
        ):
            sh("ip", "netns", "exec", CLIENT_NS, *argv)
        ping = subprocess.Popen(
            ["ip", "netns", "exec", CLIENT_NS, "busybox", "ping", "-i", "0.1", "10.200.0.1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        arrivals: list[float] = []

        def read() -> None:
            assert ping.stdout is not None
            for line in ping.stdout:
                if "bytes from" in line:
                    arrivals.append(time.monotonic())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(3)
        moved = time.monotonic()
        endpoint.accepted(client.post(f"/node/{target}/coordinator-state", data={"state": "primary"}), "move")
        while True:
            try:
                if primary_of(client) == target:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        time.sleep(6)
        ping.terminate()
        ping.wait()
        ended = time.monotonic()
        during = [moved - 1, *[t for t in arrivals if t >= moved - 1], ended]  # silence at either end counts
        gaps = [b - a for a, b in itertools.pairwise(during)]
        print(
            f"gateway continuity over a primary move ({primary} -> {target}, client on {host}): "
            f"longest gap between replies {max(gaps, default=float('nan')):.2f} s, "
            f"{len(arrivals)} replies in all (target <= 3 s)"
        )
    finally:
        subprocess.run(["ip", "netns", "del", CLIENT_NS], check=False)


def daemon_pids(layout: LabLayout) -> dict[str, int]:
    state = LabState.load(layout.directory)
    assert state is not None
    return {node: state.ref(node, "pvcnoded").pid for node in layout.node_names}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def idle_cpu(layout: LabLayout, idle: float, what: str) -> None:
    """Print each node daemon's CPU use over ``idle`` seconds."""
    pids = daemon_pids(layout)
    before = {node: cpu_seconds(pid) for node, pid in pids.items()}
    time.sleep(idle)
    for node, pid in pids.items():
        used = (cpu_seconds(pid) - before[node]) / idle * 100
        print(f"idle CPU of {node}'s pvcnoded {what}: {used:.2f} % of one core")


def many_networks(layout: LabLayout, client, count: int, idle: float) -> None:
    idle_cpu(layout, idle, "with 1 network")
    started = time.monotonic()
    for index in range(count):
        add_network(client, VNI + 1 + index, index + 1)
    added = time.monotonic()
    print(f"{count} networks added through the API in {added - started:.1f} s")
    wanted = {f"vxlan{VNI + 1 + i}" for i in range(count)}
    pending = set(layout.node_names)
    while pending:
        pending = {node for node in pending if not wanted <= link_names(layout, node)}
        time.sleep(0.2)
    print(
        f"every node carries all {count + 1} networks {time.monotonic() - started:.1f} s after the first call"
    )
    primary = primary_of(client)
    pattern = re.compile(r"dnsmasq-(\d+)/dnsmasq.conf")
    while True:
        running = {m.group(1) for m in pattern.finditer(sh("pgrep", "-af", "dnsmasq", check=False))}
        if len(running) >= count + 1:
            break
        time.sleep(0.5)
    print(
        f"the primary ({primary}) serves DHCP on all {count + 1} networks",
        f"{time.monotonic() - started:.1f} s after the first call",
    )
    time.sleep(5)
    idle_cpu(layout, idle, f"with {count + 1} networks (target <= 1 %)")


def restart_reconcile(layout: LabLayout, client, directory: Path, count: int) -> None:
    """A non-primary node whose links are all gone: its daemon's start until it carries them all."""
    node = next(n for n in layout.node_names if n != primary_of(client))
    pvc_lab(directory, "node", "stop", node)
    names = [name for name in link_names(layout, node) if name.startswith(("vmbr", "vxlan"))]
    for name in sorted(names, key=lambda n: not n.startswith("vxlan")):
        in_node(layout, node, "ip", "link", "del", name, check=False)
    started = time.monotonic()
    pvc_lab(directory, "node", "start", node)
    wanted = {f"vxlan{VNI + i}" for i in range(count + 1)}
    while not wanted <= link_names(layout, node):
        time.sleep(0.1)
    print(
        f"{node}'s daemon started with none of its links: all {count + 1} networks back",
        f"{time.monotonic() - started:.1f} s after its start (target <= 10 s)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--idle", type=float, default=130.0, help="seconds (more than one resync pass)")
    args = parser.parse_args()
    with own_lab(PREFIX, NET_INDEX, ceph=False) as layout:
        client = endpoint.client(layout)
        usable_after_add(layout, client)
        gateway_continuity(layout, client)
        if args.networks:
            many_networks(layout, client, args.networks, args.idle)
            restart_reconcile(layout, client, layout.directory, args.networks)


if __name__ == "__main__":
    main()
