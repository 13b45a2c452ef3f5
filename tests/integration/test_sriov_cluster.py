"""SR-IOV's domain functions on a real ZooKeeper: free VFs for a move, the VFs a VM uses, and
what a node daemon calls to report its PFs and VFs and apply the settings asked of them.

The host side runs on a made-up sysfs and a stand-in for ``ip`` (tests/sriov_sysfs.py): this
kernel has no SR-IOV device to run them on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.session import Cluster
from pvc.cluster.sriov import actions, queries
from pvc.cluster.sriov import node as sriov_node
from pvc.state import nodes, vms
from pvc.state import sriov as records
from pvc.state.cache import ClusterCache
from pvc.state.records import NodeStatic
from pvc.state.schema import ensure_schema
from pvc.state.sriov import SriovVf
from pvc.state.store import NOTHING
from tests.sriov_data import add_vm, macvtap_xml, populate
from tests.sriov_sysfs import FakeIpLink, make_pf, vf_mac


@pytest.fixture
def cluster_handle(store):
    ensure_schema(store)
    cache = ClusterCache(store)
    cache.start()
    assert cache.wait_ready(10)
    yield Cluster(store, cache)
    cache.close()


@pytest.fixture
def populated(cluster_handle):
    uuids, commit = populate(cluster_handle.store)
    cluster_handle.settle(commit)
    return cluster_handle, uuids


def test_free_vfs_are_those_no_vm_on_the_node_uses(populated) -> None:
    cluster, _ = populated
    assert queries.free_vfs(cluster, "hv1", "ens1f0") == ["ens1f0v2", "ens1f0v3"]
    assert queries.free_vfs(cluster, "hv2", "ens1f0") == ["ens1f0v1"]
    assert queries.vf_free_on(cluster, "hv2", "ens1f0")
    assert not queries.vf_free_on(cluster, "hv2", "ens1f1")  # hv2 has no such PF
    assert not queries.vf_free_on(cluster, "hv9", "ens1f0")  # nor does a node that never registered
    _, commit = add_vm(cluster.store, "mac3", "hv2", macvtap_xml, "ens1f0v1")
    cluster.settle(commit)
    assert not queries.vf_free_on(cluster, "hv2", "ens1f0")


def test_a_vm_moved_away_frees_its_vf_on_the_node_it_left(populated) -> None:
    cluster, uuids = populated
    _, commit = vms.update_placement(
        cluster.store, uuids["mac1"], lambda p: replace(p, node="hv2", last_node="hv1")
    )
    cluster.settle(commit)
    assert queries.free_vfs(cluster, "hv1", "ens1f0") == ["ens1f0v0", "ens1f0v2", "ens1f0v3"]
    # on hv2 it names hv2's ens1f0v0, which mac2 already uses (the check before a move prevents this)
    assert [vf.phy for vf in queries.vm_vfs(cluster, cluster.cache.vm(uuids["mac1"]))] == ["ens1f0v0"]


def test_the_vfs_a_vm_uses(populated) -> None:
    cluster, uuids = populated
    cache = cluster.cache
    assert [(vf.phy, vf.pci) for vf in queries.vm_vfs(cluster, cache.vm(uuids["pci1"]))] == [
        ("ens1f0v1", "0000:01:10.1")
    ]
    mac2 = queries.vm_vfs(cluster, cache.vm(uuids["mac2"]))
    assert [(vf.phy, vf.pci) for vf in mac2] == [("ens1f0v0", "0000:03:10.0")]  # hv2's, not hv1's


def test_settings_asked_through_the_domain_library(populated) -> None:
    cluster, _ = populated
    message = actions.set_vf_config(cluster, "hv1", "ens1f0v3", vlan_id=7, trust=None)
    assert message == "Set VF 'ens1f0v3' on node 'hv1' to vlan_id=7; the node applies it"
    # read-your-writes: the cache shows it at once
    assert queries.get_vf(cluster, "hv1", "ens1f0v3")["config"]["vlan_id"] == "7"
    with pytest.raises(ClusterError, match="Unknown VF settings: mtu"):
        actions.set_vf_config(cluster, "hv1", "ens1f0v3", mtu=9000)


# -- the node's side -------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host with PF ens1f0 (VFs 0-2) and ens1f1 (VF 0); returns its /sys/class/net."""
    sys = tmp_path / "sys"
    make_pf(sys, "ens1f0", "0000:01:00.0", 8, {0: "ens1f0v0", 1: "ens1f0v1", 2: "ens1f0v2"}, mtu=9000)
    make_pf(sys, "ens1f1", "0000:01:00.1", 4, {0: "ens1f1v0"}, slot=0x20)
    return sys / "class" / "net"


@pytest.fixture
def hv1(cluster_handle):
    cluster_handle.settle(nodes.register(cluster_handle.store, NodeStatic(name="hv1")))
    return cluster_handle


def test_a_node_reports_what_it_has(hv1, host: Path) -> None:
    store = hv1.store
    fake = FakeIpLink({"ens1f0": 3, "ens1f1": 1})
    commit = sriov_node.report(store, "hv1", root=host, run=fake)
    hv1.settle(commit)
    assert queries.list_pfs(hv1, "hv1") == [
        {"phy": "ens1f0", "mtu": "9000", "vfs": ["ens1f0v0", "ens1f0v1", "ens1f0v2"]},
        {"phy": "ens1f1", "mtu": "1500", "vfs": ["ens1f1v0"]},
    ]
    first = records.read_vf(store.get, "hv1", "ens1f0v0")
    assert first == SriovVf(
        phy="ens1f0v0",
        pf="ens1f0",
        index=0,
        pci="0000:01:10.0",
        mac=vf_mac(0x10, 0),
        mtu=9000,
        config={
            "vlan_id": 0,
            "vlan_qos": 0,
            "tx_rate_min": 0,
            "tx_rate_max": 0,
            "spoof_check": True,
            "link_state": "auto",
            "trust": False,
            "query_rss": False,
        },
    )
    assert records.read_vf(store.get, "hv1", "ens1f1v0").pci == "0000:01:20.0"
    assert sriov_node.report(store, "hv1", root=host, run=fake) == NOTHING


def test_a_vf_handed_to_a_vm_keeps_its_name(hv1, tmp_path: Path) -> None:
    store = hv1.store
    sys = tmp_path / "other"
    make_pf(sys, "ens2f0", "0000:05:00.0", 4, {0: "ens2f0v0", 1: "eth5"})
    host = sys / "class" / "net"
    fake = FakeIpLink({"ens2f0": 2})
    sriov_node.report(store, "hv1", root=host, run=fake)
    vf_device = (host / "eth5" / "device").resolve()
    for entry in (vf_device / "net" / "eth5").iterdir():
        entry.unlink()
    (vf_device / "net" / "eth5").rmdir()  # vfio-pci took it: no network device
    fake.links["ens2f0"][1]["address"] = "52:54:00:77:00:01"
    sriov_node.report(store, "hv1", root=host, run=fake)
    assert [vf.phy for vf in records.read_vfs(store.children, store.get, "hv1")] == ["ens2f0v0", "eth5"]
    kept = records.read_vf(store.get, "hv1", "eth5")
    assert (kept.pci, kept.mac, kept.mtu) == ("0000:05:10.1", "52:54:00:77:00:01", None)
    assert records.read_pfs(store.children, store.get, "hv1")[0].vfs == ["ens2f0v0", "eth5"]


def test_a_report_without_ip_still_records_the_functions(hv1, host: Path) -> None:
    store = hv1.store
    hv1.settle(sriov_node.report(store, "hv1", root=host, run=FakeIpLink({})))  # ip knows neither PF
    assert [vf.phy for vf in records.read_vfs(store.children, store.get, "hv1")] == [
        "ens1f0v0",
        "ens1f0v1",
        "ens1f0v2",
        "ens1f1v0",
    ]
    assert records.read_vf(store.get, "hv1", "ens1f0v0").config == {}
    assert queries.get_vf(hv1, "hv1", "ens1f0v0")["config"]["trust"] == "N/A"


def test_the_node_applies_what_was_asked_then_reports_it(hv1, host: Path) -> None:
    store = hv1.store
    fake = FakeIpLink({"ens1f0": 3, "ens1f1": 1}, refuse=["query_rss"])
    hv1.settle(sriov_node.report(store, "hv1", root=host, run=fake))
    assert sriov_node.pending(store, "hv1") == []
    actions.set_vf_config(hv1, "hv1", "ens1f0v2", vlan_id=100, vlan_qos=2, tx_rate_max=1000, query_rss=True)
    actions.set_vf_config(hv1, "hv1", "ens1f1v0", spoof_check=True)  # it has that already
    assert [item.vf.phy for item in sriov_node.pending(store, "hv1")] == ["ens1f0v2"]
    results = sriov_node.apply_asked(store, "hv1", run=fake)
    assert fake.settings_run() == [
        "ens1f0 vf 2 vlan 100 qos 2",
        "ens1f0 vf 2 min_tx_rate 0 max_tx_rate 1000",
        "ens1f0 vf 2 query_rss on",
    ]
    assert results["ens1f0v2"].applied == ("vlan", "rate")
    assert "Operation not supported" in results["ens1f0v2"].failed["query_rss"]
    sriov_node.report(store, "hv1", root=host, run=fake)
    reported = records.read_vf(store.get, "hv1", "ens1f0v2").reported
    assert (reported.vlan_id, reported.vlan_qos, reported.tx_rate_max) == (100, 2, 1000)
    # only the refused setting is still pending, and it is tried again
    (left,) = sriov_node.pending(store, "hv1")
    assert left.vf.phy == "ens1f0v2" and left.wanted.query_rss is True
    fake.calls.clear()
    sriov_node.apply_asked(store, "hv1", run=fake)
    assert fake.settings_run() == ["ens1f0 vf 2 query_rss on"]


def test_vf_counts_are_set_and_refusals_reported(host: Path) -> None:
    failed = sriov_node.set_vf_counts({"ens1f0": 5, "ens1f1": 9, "eno9": 1}, host)
    assert sorted(failed) == ["eno9", "ens1f1"] and "0 to 4" in failed["ens1f1"]
    assert (host / "ens1f0" / "device" / "sriov_numvfs").read_text().strip() == "5"
