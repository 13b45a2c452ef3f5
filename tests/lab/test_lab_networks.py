"""Client networks in the lab with real QEMU guests: VXLAN with BGP EVPN between nodes, DHCP and
DNS from the primary's dnsmasq, the firewall, the PowerDNS aggregator, and a primary move."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import dns.message
import dns.query
import pytest

from pvc.client.http import ApiClient, segment
from pvc.lab import demo, endpoint
from pvc.lab.guest import GuestNetwork, net_bound, probes
from pvc.lab.layout import LabLayout
from tests.helpers import wait_for
from tests.lab.lab_run import lab_up

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

PREFIX, NET_INDEX = "pvcnet", 79
VNI, DOMAIN = 4100, "lan.lab.test"
SUBNET, GATEWAY = "10.179.0.0/24", "10.179.0.1"
SUBNET6, GATEWAY6 = "fd00:4100::/64", "fd00:4100::1"
RANGE = ("10.179.0.100", "10.179.0.199")
RESERVED = "10.179.0.50"
MAC_A, MAC_B, MAC_C = "52:54:00:4a:00:01", "52:54:00:4a:00:02", "52:54:00:4a:00:03"


@pytest.fixture(scope="module")
def lab() -> Iterator[LabLayout]:
    with lab_up("pvc-lab-net-", PREFIX, NET_INDEX, ceph=False) as layout:
        yield layout


def ok(response, what: str):
    return endpoint.accepted(response, what)


def links_of(layout: LabLayout, node: str) -> dict[str, dict]:
    out = subprocess.run(
        ["ip", "netns", "exec", layout.netns(node), "ip", "-d", "-j", "link", "show"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {link["ifname"]: link for link in json.loads(out)}


def flood_peers(layout: LabLayout, node: str) -> set[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", layout.netns(node), "bridge", "-j", "fdb", "show", "dev", f"vxlan{VNI}"],
        capture_output=True,
        text=True,
    ).stdout
    entries = json.loads(out) if out.strip() else []
    return {e["dst"] for e in entries if e.get("mac") == "00:00:00:00:00:00" and "dst" in e}


def addresses_of(layout: LabLayout, node: str, device: str) -> set[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", layout.netns(node), "ip", "-j", "addr", "show", "dev", device],
        capture_output=True,
        text=True,
    ).stdout
    found = json.loads(out) if out.strip() else []
    return {f"{a['local']}/{a['prefixlen']}" for link in found for a in link.get("addr_info", [])}


def console(layout: LabLayout, name: str) -> str:
    path = demo.serial_log(layout, name)
    return path.read_text(errors="replace") if path.exists() else ""


def probe_after(layout: LabLayout, name: str, kind: str, target: str, since: int) -> str | None:
    """The latest result of a guest's probe printed after console offset ``since``."""
    return probes(console(layout, name)[since:]).get((kind, target))


def resolve(layout: LabLayout, name: str) -> list[str]:
    server = str(layout.floating("upstream").ip)
    answer = dns.query.udp(dns.message.make_query(name, "A"), server, port=53, timeout=2)
    return sorted(item.address for rrset in answer.answer for item in rrset)


def define_guest(
    client: ApiClient, layout: LabLayout, name: str, node: str, mac: str, net: GuestNetwork
) -> None:
    xml = demo.guest_xml(layout, name, nics=[(VNI, mac)], network=net)
    ok(client.post("/vm", data={"xml": xml, "node": node}), f"define {name}")
    ok(client.post(f"/vm/{segment(name)}/state", data={"state": "start"}), f"start {name}")


def test_guests_on_a_managed_network(lab: LabLayout) -> None:
    client = endpoint.client(lab)
    nodes = lab.node_names
    primary = next(n["name"] for n in ok(client.get("/node"), "nodes") if n["coordinator_state"] == "primary")
    a_node, b_node = [n for n in nodes if n != primary][:2]
    cluster_ips = {node: lab.cluster_ip(node) for node in nodes}

    # A network added through the API is on every node, with its EVPN flood list, within seconds.
    started = time.monotonic()
    ok(
        client.post(
            "/network",
            data={
                "vni": VNI,
                "description": "lan",
                "nettype": "managed",
                "domain": DOMAIN,
                "ip4_network": SUBNET,
                "ip4_gateway": GATEWAY,
                "dhcp4": "true",
                "dhcp4_start": RANGE[0],
                "dhcp4_end": RANGE[1],
                "ip6_network": SUBNET6,
                "ip6_gateway": GATEWAY6,
            },
        ),
        "add network",
    )
    for node in nodes:
        others = {ip for other, ip in cluster_ips.items() if other != node}
        assert wait_for(lambda node=node, others=others: flood_peers(lab, node) == others, timeout=15)
        found = links_of(lab, node)
        vxlan = found[f"vxlan{VNI}"]["linkinfo"]["info_data"]
        assert (vxlan["id"], vxlan["local"], vxlan["port"]) == (VNI, cluster_ips[node], 4789)
        assert found[f"vxlan{VNI}"]["master"] == f"vmbr{VNI}"
        assert found[f"vmbr{VNI}"]["mtu"] == found[lab.node_link(node)]["mtu"] - 50
    usable = time.monotonic() - started
    print(f"network usable on every node {usable:.2f} s after the API call")
    assert wait_for(lambda: f"{GATEWAY}/24" in addresses_of(lab, primary, f"vmbr{VNI}"), timeout=10)
    assert f"{GATEWAY6}/64" in addresses_of(lab, primary, f"vmbr{VNI}")
    for node in nodes:
        if node != primary:
            assert f"{GATEWAY}/24" not in addresses_of(lab, node, f"vmbr{VNI}")

    # A reservation, and an ACL that drops one port towards the network's VMs.
    ok(
        client.post(
            f"/network/{VNI}/lease", data={"macaddress": MAC_B, "ipaddress": RESERVED, "hostname": "vmb"}
        ),
        "reserve",
    )
    ok(
        client.post(
            f"/network/{VNI}/acl",
            data={"description": "no8080", "direction": "in", "rule": "tcp dport 8080 drop"},
        ),
        "acl",
    )

    # Two guests on different nodes (neither is the primary): DHCP over VXLAN, then probes.
    define_guest(
        client,
        lab,
        "vma",
        a_node,
        MAC_A,
        GuestNetwork(
            "vma",
            ping=(RESERVED,),
            tcp=(f"{RESERVED}:80", f"{RESERVED}:8080"),
            dns=(f"vmb.{DOMAIN}@{GATEWAY}",),
        ),
    )
    define_guest(client, lab, "vmb", b_node, MAC_B, GuestNetwork("vmb", ping=(GATEWAY,), ping6=(GATEWAY6,)))

    def bound(name: str) -> str | None:
        return net_bound(console(lab, name)).get("eth0")

    assert wait_for(lambda: bound("vma") and bound("vmb"), timeout=180), (
        console(lab, "vma"),
        console(lab, "vmb"),
    )
    lease_a = bound("vma").split("/")[0]
    assert RANGE[0] <= lease_a <= RANGE[1] and len(lease_a) == len(RANGE[0])
    assert bound("vmb") == f"{RESERVED}/24"

    assert wait_for(lambda: probe_after(lab, "vma", "PING", RESERVED, 0) == "ok", timeout=60)
    assert wait_for(lambda: probe_after(lab, "vma", "TCP", f"{RESERVED}:80", 0) == "open", timeout=60)
    assert probe_after(lab, "vma", "TCP", f"{RESERVED}:8080", 0) == "closed"
    assert wait_for(lambda: probe_after(lab, "vma", "DNS", f"vmb.{DOMAIN}", 0) == RESERVED, timeout=30)

    # IPv6: the guest took an address from the primary's router advertisements.
    assert wait_for(lambda: probe_after(lab, "vmb", "PING6", GATEWAY6, 0) == "ok", timeout=60)

    # A NIC hot-plugged into a running guest lands on the network's bridge on its node.
    def ports(node: str) -> set[str]:
        out = subprocess.run(
            ["ip", "netns", "exec", lab.netns(node), "ip", "-j", "link", "show", "master", f"vmbr{VNI}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return {link["ifname"] for link in json.loads(out)}

    before = ports(a_node)
    nic = (
        f"<interface type='bridge'><mac address='{MAC_C}'/><source bridge='vmbr{VNI}'/>"
        "<model type='virtio'/></interface>"
    )
    ok(client.post("/vm/vma/device", data={"xml": nic}), "hot-plug a NIC")
    assert wait_for(lambda: len(ports(a_node) - before) == 1, timeout=60), ports(a_node)

    # The lease is in ZooKeeper (through the lease hook), and PowerDNS serves both names.
    def leases() -> dict[str, dict]:
        return {lease["mac_address"]: lease for lease in ok(client.get(f"/network/{VNI}/lease"), "leases")}

    assert wait_for(lambda: MAC_A in leases(), timeout=30)
    assert (leases()[MAC_A]["ip4_address"], leases()[MAC_A]["hostname"]) == (lease_a, "vma")
    assert wait_for(lambda: resolve(lab, f"vma.{DOMAIN}") == [lease_a], timeout=30)
    assert resolve(lab, f"vmb.{DOMAIN}") == [RESERVED]

    # Without the ACL the port the firewall dropped answers: the ACL was what closed it.
    ok(client.delete(f"/network/{VNI}/acl/no8080"), "remove acl")
    mark = len(console(lab, "vma"))
    assert wait_for(lambda: probe_after(lab, "vma", "TCP", f"{RESERVED}:8080", mark) == "open", timeout=30)

    # The network cannot go while the guests use it.
    refused = client.delete(f"/network/{VNI}")
    assert refused.status == 409 and "vma" in refused.message

    # Move the primary: the gateway, DHCP and DNS follow it; leases survive.
    ok(client.post(f"/node/{a_node}/coordinator-state", data={"state": "primary"}), "move primary")

    def coordinator_state(node: str) -> str | None:
        try:
            return ok(client.get(f"/node/{node}"), "node")[0]["coordinator_state"]
        except Exception:  # the API moves with the primary
            return None

    assert wait_for(lambda: coordinator_state(a_node) == "primary", timeout=60)
    assert wait_for(lambda: f"{GATEWAY}/24" in addresses_of(lab, a_node, f"vmbr{VNI}"), timeout=30)
    assert f"{GATEWAY}/24" not in addresses_of(lab, primary, f"vmbr{VNI}")
    mark = len(console(lab, "vmb"))
    assert wait_for(lambda: probe_after(lab, "vmb", "PING", GATEWAY, mark) == "ok", timeout=30)
    assert wait_for(lambda: probe_after(lab, "vmb", "PING6", GATEWAY6, mark) == "ok", timeout=30)
    assert MAC_A in leases()
    assert wait_for(lambda: resolve(lab, f"vma.{DOMAIN}") == [lease_a], timeout=30)


def vlans_supported() -> bool:
    """Whether this kernel can make an 802.1Q VLAN (bridged networks need one)."""
    name = f"pvcvlchk{os.getpid() % 10000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        made = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                name,
                "sh",
                "-c",
                "ip link add v0 type veth peer name v1 && ip link add link v0 name v0.5 type vlan id 5",
            ],
            capture_output=True,
        )
        return made.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_a_network_a_node_cannot_make_is_a_fault_until_removed(lab: LabLayout) -> None:
    if vlans_supported():
        pytest.skip("this kernel makes VLANs: the bridged network works (see the next test)")
    client = endpoint.client(lab)
    ok(
        client.post("/network", data={"vni": 44, "description": "vlan44", "nettype": "bridged"}),
        "add bridged",
    )

    def network_faults() -> list[str]:
        faults = ok(client.get("/faults"), "faults")
        return sorted(f["message"] for f in faults if "network 44 on" in f["message"])

    assert wait_for(lambda: len(network_faults()) == len(lab.node_names), timeout=30), network_faults()
    for node, message in zip(lab.node_names, network_faults(), strict=True):
        assert message.startswith(f"network 44 on {node}: ")
    for node in lab.node_names:  # the bridge is there (VMs on it can start), without an uplink
        assert {"vmbr44", "vlan44"} & set(links_of(lab, node)) == {"vmbr44"}
    ok(client.delete("/network/44"), "remove bridged")
    assert wait_for(lambda: network_faults() == [], timeout=30)
    for node in lab.node_names:
        assert wait_for(lambda node=node: "vmbr44" not in links_of(lab, node), timeout=15)


def test_bridged_network_carries_traffic_between_nodes(lab: LabLayout) -> None:
    if not vlans_supported():
        pytest.skip("this kernel has no 802.1Q VLAN support, so no bridged network can be made here")
    client = endpoint.client(lab)
    ok(
        client.post("/network", data={"vni": 43, "description": "vlan43", "nettype": "bridged"}),
        "add bridged",
    )
    for node in lab.node_names:
        assert wait_for(lambda node=node: "vlan43" in links_of(lab, node), timeout=15)
        vlan = links_of(lab, node)["vlan43"]
        assert vlan["linkinfo"]["info_data"]["id"] == 43 and vlan["master"] == "vmbr43"
    first, second = lab.node_names[:2]
    guests = {"vlc": (first, "10.43.0.11"), "vld": (second, "10.43.0.12")}
    for name, (node, address) in guests.items():
        peer = next(other for other_name, (_n, other) in guests.items() if other_name != name)
        net = GuestNetwork(name, address=f"{address}/24", ping=(peer,))
        xml = demo.guest_xml(lab, name, nics=[(43, "")], network=net)
        ok(client.post("/vm", data={"xml": xml, "node": node}), f"define {name}")
        ok(client.post(f"/vm/{segment(name)}/state", data={"state": "start"}), f"start {name}")
    assert wait_for(lambda: probe_after(lab, "vlc", "PING", "10.43.0.12", 0) == "ok", timeout=180)
    assert wait_for(lambda: probe_after(lab, "vld", "PING", "10.43.0.11", 0) == "ok", timeout=60)
