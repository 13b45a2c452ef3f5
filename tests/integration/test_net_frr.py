"""FRR's BGP EVPN for real: three node namespaces on one switch namespace, one route reflector.

The test builds its own namespaces (a random suffix, all removed afterwards): a "switch"
namespace with a bridge and one veth to each node namespace, the underlay on those veths,
and in each node a ``vmbr100`` bridge with a ``vxlan100`` port as PVC's links make them
(no learning, neighbour suppression). n1 is the coordinator, n2 and n3 are clients; each
runs :class:`FrrService` with the lab's quick timers. Nothing is configured in the root
namespace. Times measured are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pvc import commands, processes
from pvc.net.frr import BGPD, ZEBRA, FrrService, Reload
from pvc.net.frr_config import LAB_TIMERS, FrrParams, UpstreamBgp


def _can_run() -> bool:
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("ip", "bridge", "vtysh", "busybox")):
        return False
    if not (Path(ZEBRA).exists() and Path(BGPD).exists()):
        return False
    return commands.run(["id", "frr"], timeout=10, accept=None).returncode == 0


pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not _can_run(), reason="needs root, ip netns, busybox and FRR (zebra, bgpd, vtysh)"),
]

UNDERLAY = ipaddress.ip_network("10.213.0.0/24")
NODES = ("n1", "n2", "n3")
COORDINATOR = "n1"
HOLD = LAB_TIMERS.hold
ZERO_MAC = "00:00:00:00:00:00"


def underlay(node: str) -> str:
    return str(UNDERLAY.network_address + int(node[1:]))


def others(node: str, nodes: tuple[str, ...] = NODES) -> set[str]:
    """The underlay addresses of ``nodes`` but ``node``."""
    return {underlay(peer) for peer in nodes if peer != node}


def overlay(node: str, vni: int) -> str:
    return f"10.214.{vni % 256}.{node[1:]}"


def run(*argv: str, timeout: float = 30.0, check: bool = True) -> commands.CommandResult[str]:
    return commands.run(list(argv), timeout=timeout, accept=(0,) if check else None)


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Seconds until ``check()`` holds; fails the test after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started


@dataclass
class Fabric:
    """The test's namespaces, by node, and what runs in them."""

    suffix: str
    root: Path
    services: dict[str, FrrService]

    def ns(self, node: str) -> str:
        return f"pvcfrr{self.suffix}-{node}"

    def in_ns(self, node: str, *argv: str, check: bool = True) -> commands.CommandResult[str]:
        return run("ip", "netns", "exec", self.ns(node), *argv, check=check)

    def add_vni(self, node: str, vni: int) -> None:
        """vmbr<VNI> with its vxlan<VNI> port, as the links adapter makes them, and an overlay address."""
        ns, local = self.ns(node), underlay(node)
        run("ip", "-n", ns, "link", "add", f"vmbr{vni}", "type", "bridge")
        run(
            "ip", "-n", ns, "link", "add", f"vxlan{vni}", "type", "vxlan", "id", str(vni),
            "local", local, "dstport", "4789", "nolearning",
        )  # fmt: skip
        run("ip", "-n", ns, "link", "set", f"vxlan{vni}", "master", f"vmbr{vni}", "addrgenmode", "none")
        port = f"vxlan{vni}"
        self.in_ns(node, "bridge", "link", "set", "dev", port, "learning", "off", "neigh_suppress", "on")
        run("ip", "-n", ns, "link", "set", f"vxlan{vni}", "up")
        run("ip", "-n", ns, "link", "set", f"vmbr{vni}", "up")
        run("ip", "-n", ns, "addr", "add", f"{overlay(node, vni)}/24", "dev", f"vmbr{vni}")

    def flood_targets(self, node: str, vni: int) -> set[str]:
        """The tunnel ends ``vxlan<VNI>`` floods to (zebra's type-3 entries ``00:00:00:00:00:00 dst``)."""
        result = self.in_ns(node, "bridge", "-j", "fdb", "show", "dev", f"vxlan{vni}", check=False)
        if result.returncode != 0:
            return set()
        entries = json.loads(result.stdout or "[]")
        return {entry["dst"] for entry in entries if entry.get("mac") == ZERO_MAC and "dst" in entry}

    def flooded_everywhere(self, vni: int, nodes: tuple[str, ...] = NODES) -> bool:
        """True when each of ``nodes`` floods ``vni`` to exactly the others."""
        return all(self.flood_targets(node, vni) == others(node, nodes) for node in nodes)

    def pings(self, node: str, address: str) -> bool:
        return self.in_ns(node, "busybox", "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0

    def params(self, node: str, **changes: object) -> FrrParams:
        values: dict = dict(
            node_name=node,
            router_id=underlay(node),
            cluster_network=str(UNDERLAY),
            coordinators=(underlay(COORDINATOR),),
            is_coordinator=node == COORDINATOR,
            directory=str(self.root / node),
            timers=LAB_TIMERS,
        )
        return FrrParams(**{**values, **changes})


def _build(fabric: Fabric) -> None:
    switch = fabric.ns("sw")
    run("ip", "netns", "add", switch)
    run("ip", "-n", switch, "link", "set", "lo", "up")
    run("ip", "-n", switch, "link", "add", "sw0", "type", "bridge")
    run("ip", "-n", switch, "link", "set", "sw0", "up")
    for node in NODES:
        ns = fabric.ns(node)
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        veth = ("type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "-n", switch, "link", "add", f"p{node}", *veth)
        run("ip", "-n", switch, "link", "set", f"p{node}", "master", "sw0", "up")
        run("ip", "-n", ns, "addr", "add", f"{underlay(node)}/{UNDERLAY.prefixlen}", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        fabric.add_vni(node, 100)


@pytest.fixture(scope="module")
def fabric() -> Iterator[Fabric]:
    # FRR's user must reach its directory: not under pytest's private (0700) temporary tree.
    root = Path(tempfile.mkdtemp(prefix="pvc-frr-"))
    root.chmod(0o711)
    fabric = Fabric(suffix=uuid.uuid4().hex[:6], root=root, services={})
    try:
        _build(fabric)
        yield fabric
    finally:
        for service in fabric.services.values():
            service.stop()
        for node in (*NODES, "sw"):
            run("ip", "netns", "del", fabric.ns(node), check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def started(fabric: Fabric) -> dict[str, float]:
    """All three nodes' FRR started, coordinator first; the times it took, in seconds."""
    began = time.monotonic()
    for node in NODES:
        service = FrrService(fabric.params(node), netns=fabric.ns(node))
        fabric.services[node] = service
        assert service.start() is Reload.STARTED
    times = {"daemons": time.monotonic() - began}
    wait_until(lambda: fabric.flooded_everywhere(100), 30, "flood entries for VNI 100 on every node")
    times["flood"] = time.monotonic() - began
    wait_until(
        lambda: all(fabric.pings("n1", overlay(peer, 100)) for peer in ("n2", "n3")),
        30,
        "n1 pings n2 and n3 across VNI 100",
    )
    times["ping"] = time.monotonic() - began
    print(
        f"\nFRR start: daemons of 3 nodes {times['daemons']:.2f} s, flood entries {times['flood']:.2f} s, "
        f"first overlay ping {times['ping']:.2f} s"
    )
    return times


def test_sessions_establish_and_type3_routes_install_flood_entries(fabric: Fabric, started) -> None:
    coordinator = fabric.services[COORDINATOR]
    status = coordinator.status()
    assert status.router_id == underlay(COORDINATOR)
    assert status.asn == 65500
    assert status.established == (underlay("n2"), underlay("n3"))
    assert all(peer.dynamic for peer in status.peers.values())  # from the listen range
    for node in ("n2", "n3"):
        assert fabric.services[node].status().established == (underlay(COORDINATOR),)
    for node in NODES:
        assert fabric.flood_targets(node, 100) == others(node)
        vnis = fabric.services[node].evpn_vnis()
        assert vnis[100].vxlan_interface == "vxlan100"
        assert vnis[100].remote_vteps == tuple(sorted(others(node)))
    for source, target in (("n2", "n3"), ("n3", "n1"), ("n2", "n1")):
        assert fabric.pings(source, overlay(target, 100)), f"{source} -> {target} over VNI 100"


def test_a_vni_added_later_is_flooded_without_touching_frr(fabric: Fabric, started) -> None:
    files = {node: (fabric.root / node / "bgpd.conf").read_text() for node in NODES}
    pids = {node: dict(fabric.services[node].refs) for node in NODES}
    began = time.monotonic()
    for node in NODES:
        fabric.add_vni(node, 200)
    links = time.monotonic() - began
    flood = wait_until(lambda: fabric.flooded_everywhere(200), 10, "flood entries for VNI 200")
    print(f"\nnew VNI: links on 3 nodes {links:.2f} s, flood entries on every peer {flood:.2f} s later")
    assert flood <= 2.0
    assert fabric.pings("n3", overlay("n2", 200))
    assert {node: (fabric.root / node / "bgpd.conf").read_text() for node in NODES} == files
    assert {node: dict(fabric.services[node].refs) for node in NODES} == pids
    assert set(fabric.services["n2"].evpn_vnis()) == {100, 200}


def test_a_stopped_client_is_withdrawn_and_comes_back(fabric: Fabric, started) -> None:
    service = fabric.services["n3"]
    refs = list(service.refs.values())
    began = time.monotonic()
    service.stop()
    assert not any(processes.is_alive(ref) for ref in refs)
    gone = wait_until(
        lambda: all(underlay("n3") not in fabric.flood_targets(node, 100) for node in ("n1", "n2")),
        HOLD,
        "n3's flood entries withdrawn from n1 and n2",
    )
    print(f"\nclient stopped: its entries gone from the others after {time.monotonic() - began:.2f} s")
    assert gone < HOLD
    assert fabric.services[COORDINATOR].status().established == (underlay("n2"),)
    assert service.start() is Reload.STARTED
    back = wait_until(lambda: fabric.flooded_everywhere(100), 15, "n3 back in every flood list")
    print(f"client started again: flood entries everywhere after {back:.2f} s")


def test_a_silent_client_is_withdrawn_within_the_hold_time(fabric: Fabric, started) -> None:
    # Its underlay link goes down: no goodbye from its bgpd, the others notice by the hold timer.
    fabric.in_ns("n2", "ip", "link", "set", "eth0", "down")
    try:
        gone = wait_until(
            lambda: all(underlay("n2") not in fabric.flood_targets(node, 100) for node in ("n1", "n3")),
            HOLD + 2,
            "silent n2 withdrawn from n1 and n3",
        )
        print(f"\nsilent client: withdrawn after {gone:.2f} s (hold time {HOLD} s)")
        assert gone <= HOLD + 1.0  # the hold timer, plus the time the last keepalive was in flight
    finally:
        fabric.in_ns("n2", "ip", "link", "set", "eth0", "up")
    back = wait_until(lambda: fabric.flooded_everywhere(100), 20, "n2 back in every flood list")
    print(f"silent client: back after {back:.2f} s")


def test_reload_applies_prefixes_live_and_restarts_bgpd_for_anything_else(fabric: Fabric, started) -> None:
    service = fabric.services[COORDINATOR]
    zebra = service.refs["zebra"]
    unicast = "show bgp ipv4 unicast json"

    assert service.reload(service.params) is Reload.UNCHANGED
    # An upstream peer (nobody answers there) changes the sessions: bgpd starts again, zebra stays.
    bgpd = service.refs["bgpd"]
    gateway = UpstreamBgp(peers=("10.213.0.254",), asn=65000, ipv4_prefixes=("10.214.100.0/24",))
    assert service.reload(replace(service.params, upstream=gateway)) is Reload.BGPD_RESTARTED
    assert service.refs["zebra"] == zebra and service.refs["bgpd"] != bgpd
    assert not processes.is_alive(bgpd)
    routes = json.loads(service.vtysh(unicast))["routes"]
    assert list(routes) == ["10.214.100.0/24"]
    assert routes["10.214.100.0/24"][0]["valid"]  # vmbr100's connected route backs it
    wait_until(lambda: len(service.status().established) == 2, 15, "EVPN sessions back after bgpd's restart")

    # Prefixes alone change on the running bgpd: no session drops.
    bgpd = service.refs["bgpd"]
    before = service.status().peers
    more = replace(gateway, ipv4_prefixes=("10.214.200.0/24",))
    assert service.reload(replace(service.params, upstream=more)) is Reload.PREFIXES
    assert service.refs["bgpd"] == bgpd and processes.is_alive(bgpd)
    announced = lambda: list(json.loads(service.vtysh(unicast)).get("routes", {}))  # noqa: E731
    wait_until(lambda: announced() == ["10.214.200.0/24"], 5, "the new prefix alone in bgpd's table")
    after = service.status().peers
    assert set(after) == set(before)
    for address, peer in after.items():
        assert peer.established and peer.uptime_ms >= before[address].uptime_ms
    assert "network 10.214.200.0/24" in (fabric.root / COORDINATOR / "bgpd.conf").read_text()

    # A prefix taken from the running bgpd by hand is declared again with the next change...
    by_hand = ["configure terminal", f"router bgp {service.params.asn}", "address-family ipv4 unicast"]
    service.vtysh(*by_hand, "no network 10.214.200.0/24")
    wait_until(lambda: announced() == [], 5, "the prefix removed by hand")
    both = replace(gateway, ipv4_prefixes=("10.214.100.0/24", "10.214.200.0/24"))
    assert service.reload(replace(service.params, upstream=both)) is Reload.PREFIXES
    wait_until(lambda: announced() == ["10.214.100.0/24", "10.214.200.0/24"], 5, "both prefixes")
    # ... and when bgpd refuses the change (no such prefix to take away), bgpd starts from the file.
    service.vtysh(*by_hand, "no network 10.214.200.0/24")
    wait_until(lambda: announced() == ["10.214.100.0/24"], 5, "the prefix removed by hand again")
    assert service.reload(replace(service.params, upstream=gateway)) is Reload.BGPD_RESTARTED
    wait_until(lambda: announced() == ["10.214.100.0/24"], 5, "the file's prefix")
    assert service.refs["bgpd"] != bgpd

    # Back to no upstream: bgpd again; the file and the running state agree.
    assert service.reload(replace(service.params, upstream=None)) is Reload.BGPD_RESTARTED
    assert announced() == []
    wait_until(lambda: fabric.flooded_everywhere(100), 15, "flood entries after the last restart")


def test_a_new_service_adopts_the_running_daemons(fabric: Fabric, started) -> None:
    running = fabric.services["n2"]
    adopter = FrrService(fabric.params("n2"), netns=fabric.ns("n2"))
    assert adopter.start() is Reload.UNCHANGED
    assert adopter.refs == running.refs
    assert adopter.status().established == (underlay(COORDINATOR),)


def test_with_two_coordinators_either_may_stop(fabric: Fabric, started) -> None:
    single = {node: fabric.services[node].params for node in NODES}
    pair = (underlay("n1"), underlay("n2"))
    try:
        for node in NODES:
            params = replace(single[node], coordinators=pair, is_coordinator=node in ("n1", "n2"))
            assert fabric.services[node].reload(params) is Reload.BGPD_RESTARTED
        wait_until(
            lambda: all(set(fabric.services[node].status().established) == others(node) for node in NODES),
            15,
            "every node in session with every coordinator (and the coordinators with each other)",
        )
        wait_until(lambda: fabric.flooded_everywhere(100), 10, "flood entries with two reflectors")
        n2 = fabric.services["n2"].status().peers
        assert not n2[underlay("n1")].dynamic and n2[underlay("n3")].dynamic
        for stopping, survivor in (("n1", "n2"), ("n2", "n1")):
            service = fabric.services[stopping]
            service.stop()
            rest = tuple(node for node in NODES if node != stopping)
            wait_until(lambda rest=rest: fabric.flooded_everywhere(100, rest), HOLD + 2, f"{stopping} gone")
            assert fabric.pings("n3", overlay(survivor, 100))
            time.sleep(HOLD)  # still there after a hold time: the surviving reflector carries them
            assert fabric.flooded_everywhere(100, rest), f"routes kept through {survivor} alone"
            assert service.start() is Reload.STARTED
            wait_until(lambda: fabric.flooded_everywhere(100), 15, f"{stopping} back")
    finally:
        for node in NODES:
            fabric.services[node].reload(single[node])
    wait_until(lambda: fabric.flooded_everywhere(100), 15, "flood entries with one reflector again")
