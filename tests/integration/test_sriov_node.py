"""The node daemon's SR-IOV manager in a running NodeLoop on a real ZooKeeper.

The host is a made-up sysfs and a stand-in for ``ip`` (tests/sriov_sysfs.py), handed to the
daemon as its :class:`~pvc.node.sriov_manager.SriovHost`: this kernel has no SR-IOV device
(no ``netdevsim``, no ``CONFIG_PCI_IOV``) to run it on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pvc.cluster.faults.queries import list_faults
from pvc.cluster.session import Cluster
from pvc.cluster.sriov import actions, queries
from pvc.node import sriov_manager
from pvc.node.sriov_manager import SriovHost
from pvc.state import paths
from pvc.state import sriov as records
from tests.sriov_sysfs import FakeIpLink, make_pf


def wait_for(check: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {check}")


def sriov_faults(cluster: Cluster) -> dict[str, str]:
    """The SR-IOV faults' messages, by the PF or VF they name (the word after 'SR-IOV PF/VF')."""
    found = {}
    for fault in list_faults(cluster):
        words = fault.message.split()
        if words[:1] == ["SR-IOV"]:
            found[words[2]] = fault.message
    return found


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """ens1f0 with VFs 0-2 (MTU 1500), ens1f1 with one VF of 4; returns the sysfs root."""
    sys = tmp_path / "sys"
    make_pf(sys, "ens1f0", "0000:01:00.0", 8, {0: "ens1f0v0", 1: "ens1f0v1", 2: "ens1f0v2"})
    make_pf(sys, "ens1f1", "0000:01:00.1", 4, {0: "ens1f1v0"}, slot=0x20)
    return sys


@pytest.fixture(autouse=True)
def quick_resync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sriov_manager, "RESYNC_INTERVAL", 0.3)


def test_the_daemon_sets_up_reports_applies_and_raises_faults(cluster, host: Path) -> None:
    net = host / "class" / "net"
    fake = FakeIpLink({"ens1f0": 3, "ens1f1": 1}, refuse=["trust"])
    sriov = [
        {"phy": "ens1f0", "vfcount": 3, "mtu": 9000},
        {"phy": "ens1f1", "vfcount": 2},
        {"phy": "ens9f0", "vfcount": 1},  # not on this host (yet)
    ]
    node = cluster("n1", ["n1"], sriov=sriov, sriov_host=SriovHost(root=net, run=fake))
    handle = node.loop.cluster
    # at start: the MTU and the counts (a different count goes through 0), then the report
    wait_for(lambda: queries.list_pfs(handle, "n1"))
    assert fake.mtus == {"ens1f0": 9000}
    assert (net / "ens1f1" / "device" / "sriov_numvfs").read_text().strip() == "2"
    assert (net / "ens1f0" / "device" / "sriov_numvfs").read_text().strip() == "3"  # unchanged
    assert [pf["phy"] for pf in queries.list_pfs(handle, "n1")] == ["ens1f0", "ens1f1"]
    assert [vf["phy"] for vf in queries.list_vfs(handle, "n1")] == [
        "ens1f0v0",
        "ens1f0v1",
        "ens1f0v2",
        "ens1f1v0",
    ]
    faults = wait_for(lambda: sriov_faults(handle))
    assert list(faults) == ["ens9f0"] and "missing" in faults["ens9f0"]

    # settings asked through the API's domain call are applied by the daemon, then reported
    actions.set_vf_config(handle, "n1", "ens1f0v1", vlan_id=42, tx_rate_max=500)
    wait_for(lambda: records.read_vf(node.store.get, "n1", "ens1f0v1").reported.vlan_id == 42)
    assert "ens1f0 vf 1 vlan 42 qos 0" in fake.settings_run()
    assert records.read_vf(node.store.get, "n1", "ens1f0v1").reported.tx_rate_max == 500
    assert queries.get_vf(handle, "n1", "ens1f0v1")["config"]["vlan_id"] == "42"

    # a setting the driver refuses is a fault naming the VF; the others still apply
    actions.set_vf_config(handle, "n1", "ens1f0v2", trust=True, spoof_check=False)
    faults = wait_for(lambda: "ens1f0v2" in sriov_faults(handle) and sriov_faults(handle))
    assert "refused trust" in faults["ens1f0v2"] and "Operation not supported" in faults["ens1f0v2"]
    assert records.read_vf(node.store.get, "n1", "ens1f0v2").reported.spoof_check is False

    # the missing PF turns up: it is set up and reported, and its fault clears
    make_pf(host, "ens9f0", "0000:05:00.0", 2, {}, slot=0x30)
    wait_for(lambda: "ens9f0" not in sriov_faults(handle))
    assert (net / "ens9f0" / "device" / "sriov_numvfs").read_text().strip() == "1"
    # asking something the driver takes clears the VF's fault
    fake.refuse.clear()
    actions.set_vf_config(handle, "n1", "ens1f0v2", trust=False)
    wait_for(lambda: not sriov_faults(handle))
    assert [pf["phy"] for pf in queries.list_pfs(handle, "n1")] == ["ens1f0", "ens1f1", "ens9f0"]


def test_a_refused_count_is_a_fault_and_not_tried_again(cluster, host: Path) -> None:
    net = host / "class" / "net"
    fake = FakeIpLink({"ens1f0": 3, "ens1f1": 1})
    node = cluster("n1", ["n1"], sriov=[{"phy": "ens1f1", "vfcount": 6}], sriov_host=SriovHost(net, fake))
    handle = node.loop.cluster
    faults = wait_for(lambda: sriov_faults(handle))
    assert "can have 0 to 4 VFs, not 6" in faults["ens1f1"]
    passes = node.loop.sriov.passes
    wait_for(lambda: node.loop.sriov.passes >= passes + 2)
    assert (net / "ens1f1" / "device" / "sriov_numvfs").read_text().strip() == "1"
    assert "ens1f1" in sriov_faults(handle)  # stays until the daemon restarts with a count that fits


def test_a_node_without_sriov_configuration_leaves_it_alone(cluster, tmp_path: Path) -> None:
    fake = FakeIpLink({})
    node = cluster("n1", ["n1"], sriov_host=SriovHost(root=tmp_path / "absent", run=fake))
    handle = node.loop.cluster
    time.sleep(1.0)  # three resync intervals
    assert node.loop.sriov.passes == 0 and fake.calls == []
    assert not handle.store.exists(paths.node_sriov("n1"))
    assert not sriov_faults(handle)
