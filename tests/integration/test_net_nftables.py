"""The client networks' firewall with real nft, in namespaces each test makes and removes.

The traffic test builds a node namespace with a network's bridge ``vmbr<VNI>`` (gateway
address on it, forwarding on), two VM namespaces plugged into the bridge and an upstream
namespace routed through the node: bridged traffic (VM to VM) and routed traffic
(upstream to VM) must both obey the network's chains.
"""

from __future__ import annotations

import shutil

import pytest

from pvc import commands
from pvc.net import nftables
from pvc.net.nftables import FirewallError, NetworkFirewall, Ruleset
from tests.integration.netns_lab import NetnsLab, netns_available

pytestmark = pytest.mark.skipif(
    not netns_available() or shutil.which("nft") is None, reason="needs root, ip netns and nft"
)

VNI = 4242
BRIDGE = f"vmbr{VNI}"
# documentation and private ranges, only ever inside the test's namespaces
GATEWAY, VM_A, VM_B = "10.242.0.1", "10.242.0.11", "10.242.0.12"
UPSTREAM_NODE, UPSTREAM = "10.243.0.1", "10.243.0.2"
CLOSED_PORT, OPEN_PORT = 15301, 15302


def _rules(netns: str, chain: str) -> list[dict]:
    return nftables.chain_rules(nftables.listing(netns=netns), chain)


def _dports(rules: list[dict]) -> list[int]:
    return [expr["match"]["right"] for rule in rules for expr in rule["expr"] if "match" in expr]


def test_apply_change_and_a_refused_set_keeps_the_previous_rules(lab: NetnsLab) -> None:
    node = lab.namespace("fw")
    assert nftables.listing(netns=node) is None

    first = Ruleset((NetworkFirewall(VNI, inbound=("tcp dport 22 drop", "tcp dport 80 drop")),))
    nftables.apply(first, netns=node)
    assert _dports(_rules(node, f"vni{VNI}_in")) == [22, 80]

    changed = Ruleset(
        (
            NetworkFirewall(VNI, inbound=("tcp dport 443 drop",), outbound=("udp dport 53 drop",)),
            NetworkFirewall(7, inbound=("tcp dport 25 drop",)),
        )
    )
    nftables.apply(changed, netns=node)
    assert _dports(_rules(node, f"vni{VNI}_in")) == [443]
    assert _dports(_rules(node, f"vni{VNI}_out")) == [53]
    assert _dports(_rules(node, "vni7_in")) == [25]
    before = nftables.listing(netns=node)

    bad = Ruleset((NetworkFirewall(VNI, inbound=("tcp dport 8080 drop", "tcp dport nope drop")),))
    with pytest.raises(FirewallError, match=f"network {VNI} in rule 2"):
        nftables.apply(bad, netns=node)
    assert nftables.listing(netns=node) == before

    # applying the same set again changes nothing but the handles
    nftables.apply(changed, netns=node)
    assert _dports(_rules(node, "vni7_in")) == [25]

    nftables.remove(netns=node)
    assert nftables.listing(netns=node) is None
    nftables.remove(netns=node)  # removing twice is fine


def test_check_rule_accepts_valid_and_rejects_invalid_rules() -> None:
    assert nftables.check_rule("tcp dport 22 drop") is None
    assert nftables.check_rule("ct state established,related accept") is None
    answer = nftables.check_rule("tcp dport nope drop")
    assert answer is not None
    assert "nope" in answer
    assert nftables.check_rule("tcp dport 22 drop; flush ruleset") == "a rule may not contain ';'"


@pytest.mark.skipif(shutil.which("runuser") is None, reason="needs runuser")
def test_check_rule_works_for_an_unprivileged_user(tmp_path) -> None:
    users = commands.run(["getent", "passwd", "pvcapi"], timeout=10, accept=None)
    if users.returncode != 0:
        pytest.skip("no pvcapi user on this host")
    script = (
        "from pvc.net import nftables; "
        "print(nftables.check_rule('tcp dport 22 drop')); print(nftables.check_rule('tcp dport nope drop'))"
    )
    source = str(nftables.__file__).rsplit("/pvc/", 1)[0]
    result = commands.run(
        ["runuser", "-u", "pvcapi", "--", "env", f"PYTHONPATH={source}", "/usr/bin/python3", "-c", script],
        timeout=30,
        cwd=tmp_path,
    )
    good, bad = result.stdout.splitlines()
    assert good == "None"
    assert "Could not resolve service" in bad


def test_acls_drop_one_port_while_another_stays_open(lab: NetnsLab) -> None:
    node, vm_a, vm_b, upstream = (lab.namespace(role) for role in ("node", "vma", "vmb", "up"))
    lab.veth(node, "pa", vm_a, "eth0")
    lab.veth(node, "pb", vm_b, "eth0")
    lab.bridge(node, BRIDGE, "pa", "pb")
    lab.run(node, "ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    for netns, address in ((vm_a, VM_A), (vm_b, VM_B)):
        lab.run(netns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        lab.run(netns, "ip", "route", "add", "default", "via", GATEWAY)
    lab.veth(node, "up0", upstream, "eth0")
    lab.run(node, "ip", "addr", "add", f"{UPSTREAM_NODE}/24", "dev", "up0")
    lab.run(upstream, "ip", "addr", "add", f"{UPSTREAM}/24", "dev", "eth0")
    lab.run(upstream, "ip", "route", "add", "default", "via", UPSTREAM_NODE)
    lab.run(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    lab.run(node, "sysctl", "-qw", *(f"{name}=1" for name in nftables.BRIDGE_NETFILTER_SETTINGS))
    assert nftables.bridged_traffic_filtered(netns=node)
    lab.serve(vm_b, CLOSED_PORT, OPEN_PORT)
    lab.serve(upstream, CLOSED_PORT, OPEN_PORT)
    for port in (CLOSED_PORT, OPEN_PORT):
        assert lab.reachable(vm_a, VM_B, port)
        assert lab.reachable(upstream, VM_B, port)

    # inbound: towards the network's VMs, routed (from upstream) and bridged (from a neighbour)
    inbound = NetworkFirewall(VNI, inbound=(f"tcp dport {CLOSED_PORT} counter drop",))
    nftables.apply(Ruleset((inbound,)), netns=node)
    assert not lab.reachable(vm_a, VM_B, CLOSED_PORT)
    assert not lab.reachable(upstream, VM_B, CLOSED_PORT)
    assert lab.reachable(vm_a, VM_B, OPEN_PORT)
    assert lab.reachable(upstream, VM_B, OPEN_PORT)
    assert lab.reachable(vm_b, UPSTREAM, CLOSED_PORT)  # outbound is untouched
    [rule] = _rules(node, f"vni{VNI}_in")
    counted = next(expr["counter"]["packets"] for expr in rule["expr"] if "counter" in expr)
    assert counted >= 2

    # outbound: from the network's VMs; an accept in the sender's chain does not skip the receiver's
    outbound = NetworkFirewall(
        VNI,
        inbound=(f"tcp dport {OPEN_PORT} drop",),
        outbound=(f"ip daddr {UPSTREAM} tcp dport {CLOSED_PORT} drop", "ip saddr 10.242.0.0/24 accept"),
    )
    nftables.apply(Ruleset((outbound,)), netns=node)
    assert not lab.reachable(vm_b, UPSTREAM, CLOSED_PORT)
    assert lab.reachable(vm_b, UPSTREAM, OPEN_PORT)
    assert lab.reachable(vm_a, VM_B, CLOSED_PORT)
    assert not lab.reachable(vm_a, VM_B, OPEN_PORT)

    nftables.remove(netns=node)
    for port in (CLOSED_PORT, OPEN_PORT):
        assert lab.reachable(vm_a, VM_B, port)
        assert lab.reachable(upstream, VM_B, port)
