"""SR-IOV records on a real ZooKeeper: a node's report replaces the last one, the settings
asked for a VF change by compare-and-set, and the cache shows both."""

from __future__ import annotations

import pytest

from pvc.state import nodes, paths
from pvc.state import sriov as records
from pvc.state.cache import ClusterCache
from pvc.state.errors import StateError
from pvc.state.records import NodeStatic
from pvc.state.schema import ensure_schema
from pvc.state.sriov import SriovPf, SriovVf, VfConfig
from pvc.state.store import NOTHING


def _vf(name: str, index: int, pf: str = "ens1f0", **config: object) -> SriovVf:
    return SriovVf(
        phy=name,
        pf=pf,
        index=index,
        pci=f"0000:01:10.{index}",
        mac=f"52:54:00:aa:00:{index:02x}",
        mtu=1500,
        config=config,
    )


PFS = [SriovPf(phy="ens1f0", mtu=9000, total_vfs=8, vfs=["ens1f0v0", "ens1f0v1"])]
VFS = [_vf("ens1f0v0", 0, vlan_id=0, trust=False), _vf("ens1f0v1", 1, vlan_id=100)]


@pytest.fixture
def registered(store):
    ensure_schema(store)
    nodes.register(store, NodeStatic(name="hv1"))
    return store


def test_a_report_is_recorded_and_read_back(registered) -> None:
    store = registered
    commit = records.record_sriov(store, "hv1", PFS, VFS)
    assert set(commit.changed) >= {
        paths.node_sriov_pf("hv1", "ens1f0"),
        paths.node_sriov_vf("hv1", "ens1f0v1"),
    }
    assert records.read_pfs(store.children, store.get, "hv1") == PFS
    assert records.read_vfs(store.children, store.get, "hv1") == VFS
    assert records.read_vf(store.get, "hv1", "ens1f0v1").reported == VfConfig(vlan_id=100)
    assert records.read_vf(store.get, "hv1", "ens1f0v9") is None
    assert records.read_vf(store.get, "hv1", "../pf/ens1f0") is None


def test_an_unchanged_report_writes_nothing_and_a_changed_one_only_the_difference(registered) -> None:
    store = registered
    records.record_sriov(store, "hv1", PFS, VFS)
    assert records.record_sriov(store, "hv1", PFS, VFS) == NOTHING
    changed = _vf("ens1f0v0", 0, vlan_id=42, trust=False)
    fewer = [SriovPf(phy="ens1f0", mtu=9000, total_vfs=8, vfs=["ens1f0v0"])]
    commit = records.record_sriov(store, "hv1", fewer, [changed])
    assert set(commit.changed) == {
        paths.node_sriov_pf("hv1", "ens1f0"),
        paths.node_sriov_vf("hv1", "ens1f0v0"),
    }
    assert commit.deleted == {paths.node_sriov_vf("hv1", "ens1f0v1")}
    assert records.read_vfs(store.children, store.get, "hv1") == [changed]
    commit = records.record_sriov(store, "hv1", [], [])  # SR-IOV switched off on the node
    assert records.read_pfs(store.children, store.get, "hv1") == []
    assert paths.node_sriov_pf("hv1", "ens1f0") in commit.deleted


def test_a_report_that_loses_a_race_is_retried(registered, make_store, monkeypatch) -> None:
    store = registered
    records.record_sriov(store, "hv1", PFS, VFS)
    other = make_store()
    real_get = store.get_versioned
    target = paths.node_sriov_vf("hv1", "ens1f0v1")
    interfered = []

    def read_then_interfere(path: str) -> tuple[bytes | None, int]:
        found = real_get(path)
        if path == target and not interfered:
            interfered.append(path)  # another writer changes the VF after this report read it
            other.set(target, b'{"phy":"ens1f0v1","pf":"x"}')
        return found

    real_commit = store.commit
    outcomes: list[str] = []

    def counted_commit(txn):
        try:
            commit = real_commit(txn)
        except Exception as error:
            outcomes.append(type(error).__name__)
            raise
        outcomes.append("committed")
        return commit

    monkeypatch.setattr(store, "get_versioned", read_then_interfere)
    monkeypatch.setattr(store, "commit", counted_commit)
    records.record_sriov(store, "hv1", PFS, [_vf("ens1f0v0", 0), _vf("ens1f0v1", 1, vlan_id=7)])
    assert interfered and outcomes == ["ConflictError", "committed"]
    assert records.read_vf(store.get, "hv1", "ens1f0v1") == _vf("ens1f0v1", 1, vlan_id=7)


def test_reports_and_settings_need_a_registered_node(store) -> None:
    ensure_schema(store)
    with pytest.raises(StateError, match="node hv9 is not registered"):
        records.record_sriov(store, "hv9", PFS, VFS)
    with pytest.raises(StateError, match="node hv9 is not registered"):
        records.update_vf_config(store, "hv9", "ens1f0v0", lambda current: current)
    assert not store.exists(paths.node("hv9"))


def test_names_that_are_not_znode_names_are_refused(registered) -> None:
    with pytest.raises(StateError, match="cannot name"):
        records.record_sriov(registered, "hv1", [SriovPf(phy="a/b")], [])


def test_settings_asked_for_a_vf_merge_by_compare_and_set(registered) -> None:
    store = registered
    records.record_sriov(store, "hv1", PFS, VFS)
    wanted, commit = records.update_vf_config(
        store, "hv1", "ens1f0v0", lambda current: VfConfig(**{**current.given(), "vlan_id": 10})
    )
    assert wanted == VfConfig(vlan_id=10) and paths.node_sriov_config("hv1", "ens1f0v0") in commit.changed
    wanted, _ = records.update_vf_config(
        store, "hv1", "ens1f0v0", lambda current: VfConfig(**{**current.given(), "trust": True})
    )
    assert wanted == VfConfig(vlan_id=10, trust=True)
    assert records.read_vf_config(store.get, "hv1", "ens1f0v0") == wanted
    same, commit = records.update_vf_config(store, "hv1", "ens1f0v0", lambda current: current)
    assert same == wanted and commit == NOTHING
    assert records.read_vf_config(store.get, "hv1", "ens1f0v1") == VfConfig()
    # a new report keeps what was asked, even of a VF that went
    records.record_sriov(store, "hv1", [], [])
    assert records.read_vf_config(store.get, "hv1", "ens1f0v0") == wanted


def test_the_cache_shows_the_records(registered) -> None:
    store = registered
    cache = ClusterCache(store)
    cache.start()
    try:
        assert cache.wait_ready(10)
        commit = records.record_sriov(store, "hv1", PFS, VFS)
        _, asked = records.update_vf_config(store, "hv1", "ens1f0v1", lambda c: VfConfig(vlan_qos=2))
        assert cache.wait_for(commit + asked)
        assert records.read_vfs(cache.children, cache.data, "hv1") == VFS
        assert records.read_vf_config(cache.data, "hv1", "ens1f0v1") == VfConfig(vlan_qos=2)
    finally:
        cache.close()
