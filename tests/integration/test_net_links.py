"""Client-network links for real, in network namespaces made for each test.

Each test node is a namespace with a veth ``under0`` (the cluster underlay, with an
address) and a veth ``eno1`` (the bridge device, MTU 9000). Links are read back with
``ip -d -j link`` as well, so the checks do not rest on the adapter's own reading. Nothing
outside the tests' namespaces is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyroute2 import IPRoute

from pvc import commands
from pvc.net import links
from pvc.net.iproute import NetError, ip
from pvc.net.linkactions import CreateBridge
from pvc.net.netspec import MARKER, NetKind, NetworkSpec, NodeNetParams
from pvc.node.net_decide import plan
from pvc.node.net_links import reconcile

MANAGED, BRIDGED = NetKind.MANAGED, NetKind.BRIDGED
UNDERLAY = "10.77.0.{}"  # RFC 1918, only ever inside the tests' namespaces


def _netns_works() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    return commands.run(["ip", "netns", "list"], timeout=10, accept=None).returncode == 0


pytestmark = pytest.mark.skipif(not _netns_works(), reason="needs root and ip netns")


@dataclass
class Node:
    """A test node: its namespace, a netlink socket in it, and its network parameters."""

    netns: str
    ipr: IPRoute
    params: NodeNetParams

    def reconcile(self, *specs: NetworkSpec):
        return reconcile(specs, self.params, ipr=self.ipr)

    def show(self, name: str) -> dict[str, Any]:
        """``ip -d -j link show dev name``: the kernel's view, read by iproute2."""
        return json.loads(ip("-d", "-j", "link", "show", "dev", name, netns=self.netns).stdout)[0]

    def names(self) -> set[str]:
        return {link["ifname"] for link in json.loads(ip("-j", "link", "show", netns=self.netns).stdout)}

    def exec(self, *argv: str, timeout: float = 20) -> commands.CommandResult[str]:
        return commands.run(["ip", "netns", "exec", self.netns, *argv], timeout=timeout, accept=None)


@pytest.fixture
def make_node() -> Iterator[Callable[..., Node]]:
    """Makes test nodes (namespace, underlay, bridge device); deletes them all afterwards."""
    made: list[Node] = []

    def make(number: int = 1, *, peer: Node | None = None) -> Node:
        netns = f"pvc-nl-{uuid.uuid4().hex[:8]}"
        ip("netns", "add", netns)
        ipr = None
        try:
            ip("link", "set", "lo", "up", netns=netns)
            if peer is None:
                ip("link", "add", "under0", "type", "veth", "peer", "name", "under0p", netns=netns)
            else:  # the underlay is the other end of the peer's cable
                ip("link", "set", "under0p", "netns", netns, netns=peer.netns)
                ip("link", "set", "under0p", "name", "under0", netns=netns)
            ip("addr", "add", UNDERLAY.format(number) + "/24", "dev", "under0", netns=netns)
            ip("link", "set", "under0", "up", netns=netns)
            ip("link", "add", "eno1", "mtu", "9000", "type", "veth", "peer", "name", "eno1p", netns=netns)
            ip("link", "set", "eno1", "up", netns=netns)
            ipr = links.open_netlink(netns)
        except BaseException:
            ip("netns", "del", netns, check=False)
            raise
        params = NodeNetParams("eno1", None, UNDERLAY.format(number), "under0")
        node = Node(netns, ipr, params)
        made.append(node)
        return node

    try:
        yield make
    finally:
        for node in made:
            node.ipr.close()
            ip("netns", "del", node.netns, check=False)


def _vlan_supported(node: Node) -> bool:
    try:
        ip("link", "add", "link", "eno1", "name", "probe5", "type", "vlan", "id", "5", netns=node.netns)
    except NetError:
        return False
    ip("link", "del", "probe5", netns=node.netns)
    return True


# --- Creating --------------------------------------------------------------------


def test_managed_networks_are_made_with_evpn_attributes(make_node) -> None:
    node = make_node()
    done = node.reconcile(NetworkSpec(100, MANAGED), NetworkSpec(101, MANAGED, 1400))
    assert done.ok and len(done.changed) == 4 and done.plan.warnings == ()
    assert done.plan.mtus == {100: 1450, 101: 1400}

    port = node.show("vxlan100")
    data, slave = port["linkinfo"]["info_data"], port["linkinfo"]["info_slave_data"]
    assert port["linkinfo"]["info_kind"] == "vxlan"
    assert (data["id"], data["local"], data["port"], data["link"]) == (100, "10.77.0.1", 4789, "under0")
    assert data["learning"] is False and "group" not in data and "remote" not in data
    assert (slave["learning"], slave["neigh_suppress"]) == (False, True)
    assert port["master"] == "vmbr100" and port["mtu"] == 1450 and port["ifalias"] == MARKER
    assert "UP" in port["flags"]
    assert port["inet6_addr_gen_mode"] == "none"
    bridge = node.show("vmbr100")
    assert bridge["linkinfo"]["info_kind"] == "bridge" and bridge["mtu"] == 1450
    assert bridge["ifalias"] == MARKER and "UP" in bridge["flags"]
    assert node.show("vmbr101")["mtu"] == 1400 and node.show("vxlan101")["mtu"] == 1400


def test_mtu_over_the_underlay_is_clamped_and_said(make_node) -> None:
    node = make_node()
    done = node.reconcile(NetworkSpec(100, MANAGED, 9000))
    assert done.ok
    assert done.plan.mtus == {100: 1450}
    assert any("9000" in line and "1450" in line for line in done.lines())
    assert node.show("vxlan100")["mtu"] == 1450 and node.show("vmbr100")["mtu"] == 1450


def test_bridged_network_is_a_vlan_on_the_bridge_device(make_node) -> None:
    node = make_node()
    if not _vlan_supported(node):
        pytest.skip("this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q)")
    done = node.reconcile(NetworkSpec(5, BRIDGED), NetworkSpec(6, BRIDGED, 1500))
    assert done.ok, done.lines()
    port = node.show("vlan5")
    assert port["linkinfo"]["info_kind"] == "vlan"
    assert port["linkinfo"]["info_data"]["id"] == 5 and port["link"] == "eno1"
    assert port["master"] == "vmbr5" and port["mtu"] == 9000 and port["ifalias"] == MARKER
    assert node.show("vmbr5")["mtu"] == 9000
    assert node.show("vmbr6")["mtu"] == 1500 and node.show("vlan6")["mtu"] == 1500
    assert node.reconcile(NetworkSpec(5, BRIDGED), NetworkSpec(6, BRIDGED, 1500)).applied == ()


def test_a_network_that_fails_does_not_stop_the_others(make_node) -> None:
    node = make_node()
    node.params = NodeNetParams("lo", None, node.params.vxlan_local, "under0")  # no VLAN on loopback
    done = node.reconcile(NetworkSpec(5, BRIDGED), NetworkSpec(100, MANAGED))
    assert not done.ok
    (failed,) = done.failed
    assert str(failed).startswith("create vlan vlan5") and "failed" in str(failed)
    assert {"vmbr100", "vxlan100"} <= node.names()
    assert "vlan5" not in node.names()


def test_a_link_that_cannot_be_finished_is_taken_away(make_node) -> None:
    node = make_node()
    (result,) = links.apply(node.ipr, [CreateBridge("vmbr100", mtu=65536)])  # more than a bridge takes
    assert not result.done and "errno 22" in str(result)
    assert "vmbr100" not in node.names()


def test_the_same_actions_twice_do_no_harm(make_node) -> None:
    node = make_node()
    decided = plan([NetworkSpec(100, MANAGED, 1400)], links.observe(node.ipr), node.params)
    for _ in range(2):
        assert all(result.done for result in links.apply(node.ipr, decided.actions))
    port = node.show("vxlan100")
    assert port["mtu"] == 1400 and port["master"] == "vmbr100"
    assert port["linkinfo"]["info_slave_data"]["neigh_suppress"] is True
    assert node.reconcile(NetworkSpec(100, MANAGED, 1400)).applied == ()


def test_a_link_made_by_hand_meanwhile_is_left_alone(make_node) -> None:
    node = make_node()
    decided = plan([NetworkSpec(100, MANAGED)], links.observe(node.ipr), node.params)
    ip("link", "add", "vmbr100", "mtu", "1300", "type", "bridge", netns=node.netns)  # between plan and apply
    results = links.apply(node.ipr, decided.actions)
    assert str(results[0]) == "create bridge vmbr100 (mtu 1450): failed: vmbr100 exists and is not PVC's"
    assert results[1].skipped
    bridge = node.show("vmbr100")
    assert bridge["mtu"] == 1300 and "ifalias" not in bridge
    assert "vxlan100" not in node.names()


# --- Changing and adopting -------------------------------------------------------


def test_second_pass_changes_nothing(make_node) -> None:
    node = make_node()
    specs = [NetworkSpec(vni, MANAGED) for vni in (100, 200, 16777215)]
    assert node.reconcile(*specs).ok
    again = node.reconcile(*specs)
    assert again.applied == () and again.plan.actions == ()
    assert "vxlan16777215" in node.names()


def test_mtu_change_converges_in_place(make_node) -> None:
    node = make_node()
    node.reconcile(NetworkSpec(100, MANAGED))
    index = node.show("vxlan100")["ifindex"]
    done = node.reconcile(NetworkSpec(100, MANAGED, 1300))
    assert done.ok and [str(a.action) for a in done.applied] == [
        "set vmbr100: mtu 1450 -> 1300",
        "set vxlan100: mtu 1450 -> 1300",
    ]
    assert node.show("vmbr100")["mtu"] == 1300 and node.show("vxlan100")["mtu"] == 1300
    assert node.show("vxlan100")["ifindex"] == index  # changed, not recreated
    assert node.reconcile(NetworkSpec(100, MANAGED, 1300)).applied == ()


def test_links_changed_by_hand_are_put_right(make_node) -> None:
    node = make_node()
    node.reconcile(NetworkSpec(100, MANAGED))
    ip("link", "set", "vxlan100", "nomaster", netns=node.netns)
    ip("link", "set", "vmbr100", "down", netns=node.netns)
    done = node.reconcile(NetworkSpec(100, MANAGED))
    assert done.ok and len(done.changed) == 3  # bridge up; port back in; its flags again
    port = node.show("vxlan100")
    assert port["master"] == "vmbr100"
    assert port["linkinfo"]["info_slave_data"]["neigh_suppress"] is True
    assert "UP" in node.show("vmbr100")["flags"]


def test_vxlan_with_a_wrong_id_is_recreated(make_node) -> None:
    node = make_node()
    ip("link", "add", "vmbr100", "type", "bridge", netns=node.netns)
    ip("link", "add", "vxlan100", "type", "vxlan", "id", "7", "dstport", "4789", netns=node.netns)
    for name in ("vmbr100", "vxlan100"):
        ip("link", "set", name, "alias", MARKER, netns=node.netns)
    done = node.reconcile(NetworkSpec(100, MANAGED))
    assert done.ok
    assert str(done.applied[0].action).startswith("remove vxlan100 (vni 7 should be 100")
    assert node.show("vxlan100")["linkinfo"]["info_data"]["id"] == 100


# --- Removing --------------------------------------------------------------------


def test_only_pvc_links_are_removed(make_node) -> None:
    node = make_node()
    node.reconcile(NetworkSpec(100, MANAGED), NetworkSpec(200, MANAGED))
    ip("link", "add", "vmbr999", "type", "bridge", netns=node.netns)  # the operator's
    ip("link", "add", "vxlan998", "type", "vxlan", "id", "998", "dstport", "4789", netns=node.netns)
    done = node.reconcile(NetworkSpec(200, MANAGED))
    assert done.ok and [str(a.action) for a in done.applied] == [
        "remove vxlan100 (no network wants it)",
        "remove vmbr100 (no network wants it)",
    ]
    names = node.names()
    assert {"vmbr999", "vxlan998", "vmbr200", "vxlan200"} <= names
    assert not {"vmbr100", "vxlan100"} & names
    assert node.reconcile().ok
    assert {"vmbr999", "vxlan998"} <= node.names()
    assert not {"vmbr200", "vxlan200"} & node.names()


def test_restarted_daemon_removes_what_is_no_longer_wanted(make_node) -> None:
    node = make_node()
    node.reconcile(NetworkSpec(100, MANAGED), NetworkSpec(101, MANAGED, 1400))
    node.ipr.close()
    node.ipr = links.open_netlink(node.netns)  # a new daemon: nothing remembered
    done = node.reconcile(NetworkSpec(101, MANAGED, 1400))
    assert done.ok and [str(a.action) for a in done.applied] == [
        "remove vxlan100 (no network wants it)",
        "remove vmbr100 (no network wants it)",
    ]
    assert {"vmbr101", "vxlan101"} <= node.names()


def test_bridge_with_a_vm_port_is_kept(make_node) -> None:
    node = make_node()
    node.reconcile(NetworkSpec(100, MANAGED))
    ip("link", "add", "vnet0", "type", "veth", "peer", "name", "vnet0p", netns=node.netns)
    ip("link", "set", "vnet0", "master", "vmbr100", netns=node.netns)
    done = node.reconcile()
    assert done.applied == () and "vnet0" in done.plan.warnings[0]
    assert {"vmbr100", "vxlan100"} <= node.names()
    ip("link", "del", "vnet0", netns=node.netns)
    assert node.reconcile().ok
    assert not {"vmbr100", "vxlan100"} & node.names()


# --- Addresses and the data path -------------------------------------------------


def test_bridge_address_add_and_remove_tolerate_repeats(make_node) -> None:
    node = make_node()
    node.reconcile(NetworkSpec(100, MANAGED))

    def addresses() -> str:
        return ip("-o", "addr", "show", "dev", "vmbr100", netns=node.netns).stdout

    for _ in range(2):
        links.add_bridge_address(100, "10.100.0.1/24", netns=node.netns)
        assert addresses().count("10.100.0.1/24") == 1
    for _ in range(2):
        links.remove_bridge_address(100, "10.100.0.1/24", netns=node.netns)
        assert "10.100.0.1" not in addresses()


def test_ping_crosses_the_vxlan_between_two_nodes(make_node) -> None:
    first = make_node(1)
    second = make_node(2, peer=first)  # under0 of each is one end of the same cable
    for node, peer, address in ((first, second, "10.100.0.1/24"), (second, first, "10.100.0.2/24")):
        assert node.reconcile(NetworkSpec(100, MANAGED)).ok
        # Static head-end replication: what EVPN type-3 routes would install.
        commands.run(
            ["bridge", "-n", node.netns, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100",
             "dst", peer.params.vxlan_local],
            timeout=10,
        )  # fmt: skip
        links.add_bridge_address(100, address, netns=node.netns)
    pinged = first.exec("busybox", "ping", "-c", "3", "-W", "2", "10.100.0.2")
    assert pinged.returncode == 0, pinged.stdout + pinged.stderr
    assert "3 packets received" in pinged.stdout
