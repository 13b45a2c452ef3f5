"""The node API shape and node metrics: figures nothing measured read N/A, never 0 or 100."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from pvc.cluster import metrics
from pvc.cluster.node.queries import health, to_api
from pvc.cluster.status import cpu_figures, memory_figures
from pvc.state.records import Keepalive, NodeRecord, NodeStatic

STATIC = NodeStatic(name="hv1", cpu_count=8, kernel="6.1", os="Linux", arch="x86_64", pvc_version="1.0")


def node(keepalive: Keepalive | None) -> NodeRecord:
    return NodeRecord(name="hv1", static=STATIC, keepalive=keepalive)


def test_health_is_not_known_until_measured():
    assert health(node(None)) == "N/A"
    assert health(node(Keepalive(timestamp=1.0))) == "N/A"
    assert health(node(Keepalive(timestamp=1.0, health=85))) == 85
    view = to_api(node(Keepalive(timestamp=1.0, health=0)))
    assert (view["health"], view["health_plugins"], view["health_details"]) == (0, [], [])


def test_a_node_without_keepalive_shows_no_made_up_figures():
    view = to_api(node(None))
    assert view["health"] == view["load"] == view["domains_count"] == "N/A"
    assert view["memory"] == dict.fromkeys(("total", "used", "free", "allocated", "provisioned"), "N/A")
    assert view["vcpu"] == {"total": 8, "allocated": "N/A"}
    assert view["interfaces"] == "N/A" and view["last_keepalive"] is None


def test_a_node_with_keepalive_shows_its_figures():
    keepalive = Keepalive(
        timestamp=5.0,
        load=0.25,
        memory={"total": 1024, "used": 256, "free": 768},
        domains=["a", "b"],
        vcpu_allocated=3,
        memory_allocated=512,
        memory_provisioned=640,
        interfaces={"eth0": {"state": "up", "mtu": 1500}},
    )
    view = to_api(node(keepalive))
    assert (view["load"], view["domains_count"], view["running_domains"]) == (0.25, 2, ["a", "b"])
    assert view["memory"] == {"total": 1024, "used": 256, "free": 768, "allocated": 512, "provisioned": 640}
    assert view["vcpu"] == {"total": 8, "allocated": 3}
    assert view["interfaces"] == {"eth0": {"state": "up", "mtu": 1500}}
    assert view["last_keepalive"] == 5.0


def test_keepalives_of_older_daemons_leave_health_and_interfaces_unknown():
    old = Keepalive.from_mapping({"timestamp": 1.0, "load": 0.5})
    assert old is not None and old.health is None and old.interfaces is None
    assert to_api(node(old))["interfaces"] == "N/A"


def _cluster(*nodes: NodeRecord) -> SimpleNamespace:
    return SimpleNamespace(cache=SimpleNamespace(nodes=lambda: list(nodes)))


def _node_metrics(cluster: SimpleNamespace) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics._Nodes(cluster))
    return generate_latest(registry).decode()


def test_node_health_metric_only_where_measured():
    measured = NodeRecord(name="hv2", static=STATIC, keepalive=Keepalive(timestamp=1.0, health=70))
    text = _node_metrics(_cluster(node(Keepalive(timestamp=1.0)), measured))
    assert 'pvc_node_health{node="hv2"} 70.0' in text
    assert 'pvc_node_health{node="hv1"}' not in text
    assert 'pvc_node_load{node="hv1"} 0.0' in text  # measured load stays, even when 0


def test_cluster_resources_are_not_known_until_a_node_reports():
    silent = node(None)
    assert set(memory_figures([silent]).values()) == {"N/A"}
    assert cpu_figures([silent]) == {"total": 8, "load": "N/A", "allocated": "N/A", "utilization": "N/A"}
    reporting = node(
        Keepalive(timestamp=1.0, load=2.0, memory={"total": 1000, "used": 250, "free": 750}, vcpu_allocated=2)
    )
    assert memory_figures([reporting, silent])["utilization"] == 25.0
    assert cpu_figures([reporting, silent]) == {"total": 16, "load": 2.0, "allocated": 2, "utilization": 12.5}
    empty = node(Keepalive(timestamp=1.0, memory={"total": 0, "used": 0, "free": 0}))
    assert memory_figures([empty])["utilization"] == "N/A"


def _reporting(name: str, daemon_state: str) -> NodeRecord:
    keepalive = Keepalive(
        timestamp=1.0,
        load=2.0,
        health=90,
        memory={"total": 1000, "used": 250, "free": 750},
        domains=["vm1", "vm2"],
        vcpu_allocated=2,
    )
    return NodeRecord(name=name, static=STATIC, keepalive=keepalive, daemon_state=daemon_state)


def test_a_dead_or_fenced_node_shows_no_figures_from_its_last_keepalive():
    """Its last keepalive tells of a past: its VMs have been recovered elsewhere since."""
    for state in ("dead", "fenced", "stop"):
        view = to_api(_reporting("hv1", state))
        assert view["health"] == view["load"] == "N/A", state
        assert view["memory"]["used"] == view["vcpu"]["allocated"] == "N/A"
        assert view["running_domains"] == [] and view["last_keepalive"] == 1.0
        assert view["domains_count"] == (0 if state == "fenced" else "N/A")
    nodes = [_reporting("hv1", "run"), _reporting("hv2", "fenced"), _reporting("hv3", "dead")]
    assert memory_figures(nodes)["total"] == 1000
    assert cpu_figures(nodes) == {"total": 8, "load": 2.0, "allocated": 2, "utilization": 25.0}
    text = _node_metrics(_cluster(*nodes))
    assert 'pvc_node_health{node="hv1"} 90.0' in text
    assert 'node="hv2"' not in text.split("pvc_node_load")[1]  # no load, memory or health for it
    assert 'pvc_node_daemon_state{node="hv2",state="fenced"} 1.0' in text


def test_the_last_fence_is_shown_without_bmc_credentials():
    from pvc.cluster.node.queries import last_fence, node_view
    from pvc.state import paths
    from pvc.state.fencing import FenceRecord, FenceState
    from pvc.state.records import encode

    record = FenceRecord(
        state=FenceState.FAILED,
        fencer="hv2",
        started=10.0,
        steps=["power off to x: no answer"],
        error="no answer",
        attempt=2,
        retry_at=99.0,
        dead_version=4,
    )
    data = {paths.node_fence("hv1"): encode(record)}
    cluster = SimpleNamespace(cache=SimpleNamespace(data=data.get))
    fence = last_fence(cluster, "hv1")
    assert fence == {
        "state": "failed",
        "fencer": "hv2",
        "started": 10.0,
        "attempt": 2,
        "steps": ["power off to x: no answer"],
        "error": "no answer",
        "recovered": [],
        "stranded": [],
        "done": False,
        "retry_at": 99.0,
    }
    assert node_view(cluster, node(None))["fence"] == fence
    assert last_fence(cluster, "hv9") is None
