"""Faults of the provisioner database, from Patroni's member records."""

from __future__ import annotations

from pvc.cluster.faults.checks import (
    DATABASE_MEMBER_DOWN,
    DATABASE_UNAVAILABLE,
    DatabaseView,
    database_findings,
)
from pvc.state.records import NodeRecord, NodeStatic
from pvc.state.states import NodeMode


def nodes() -> list[NodeRecord]:
    coordinators = [
        NodeRecord(name=n, static=NodeStatic(name=n, mode=NodeMode.COORDINATOR)) for n in ("hv1", "hv2")
    ]
    return [*coordinators, NodeRecord(name="hv3", static=NodeStatic(name="hv3"))]


def test_a_healthy_database_is_no_fault():
    view = DatabaseView({"hv1": "running", "hv2": "running"}, "hv1")
    assert database_findings(view, nodes()) == []


def test_no_running_leader_is_a_fault_and_so_is_each_coordinator_without_a_running_member():
    view = DatabaseView({"hv1": "stopped"}, "hv1")
    found = {(f.kind, f.subject): f for f in database_findings(view, nodes())}
    assert set(found) == {DATABASE_UNAVAILABLE, (DATABASE_MEMBER_DOWN, "hv1"), (DATABASE_MEMBER_DOWN, "hv2")}
    assert "leader hv1 is not running" in found[DATABASE_UNAVAILABLE].message
    assert "hv2 is not running (not registered)" in found[(DATABASE_MEMBER_DOWN, "hv2")].message
    assert "(stopped)" in found[(DATABASE_MEMBER_DOWN, "hv1")].message
    assert all(f.delta > 0 for f in found.values())
    # a hypervisor runs no member: never a fault
    assert (DATABASE_MEMBER_DOWN, "hv3") not in found


def test_no_leader_key_at_all():
    [finding] = [
        f for f in database_findings(DatabaseView({"hv1": "running", "hv2": "running"}, None), nodes())
    ]
    assert finding.subject == "database" and "no member holds the leader key" in finding.message
