"""Prometheus metrics (text format, ``pvc_`` prefix), from the cache."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pvc.api.context import ctx
from pvc.api.routes import RouteGroup
from pvc.cluster import faults as faults_mod
from pvc.state.cache import ClusterCache
from pvc.state.states import CoordinatorState, DaemonState, DomainState

group = RouteGroup("metrics")
TEXT = CONTENT_TYPE_LATEST.split(";")[0]


class _Health(Collector):
    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        faults = faults_mod.list_faults(self.cache)
        yield GaugeMetricFamily(
            "pvc_cluster_health", "Cluster health, 0-100", value=faults_mod.cluster_health(faults)
        )
        yield GaugeMetricFamily(
            "pvc_cluster_maintenance",
            "1 in maintenance mode",
            value=int(self.cache.cluster_config().maintenance),
        )
        by_status = GaugeMetricFamily("pvc_faults", "Faults by status", labels=["status"])
        for status in (faults_mod.STATUS_NEW, faults_mod.STATUS_ACK):
            by_status.add_metric([status], sum(1 for f in faults if f.status == status))
        yield by_status
        delta = GaugeMetricFamily(
            "pvc_fault_health_delta", "Health delta of each fault", labels=["id", "status"]
        )
        for fault in faults:
            delta.add_metric([fault.id, fault.status], fault.health_delta)
        yield delta


class _Nodes(Collector):
    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        nodes = self.cache.nodes()
        families = {
            "daemon": (
                GaugeMetricFamily(
                    "pvc_node_daemon_state", "1 for the node's daemon state", labels=["node", "state"]
                ),
                DaemonState,
            ),
            "coordinator": (
                GaugeMetricFamily(
                    "pvc_node_coordinator_state", "1 for the coordinator state", labels=["node", "state"]
                ),
                CoordinatorState,
            ),
            "domain": (
                GaugeMetricFamily(
                    "pvc_node_domain_state", "1 for the domain state", labels=["node", "state"]
                ),
                DomainState,
            ),
        }
        load = GaugeMetricFamily("pvc_node_load", "1-minute load average", labels=["node"])
        memory = GaugeMetricFamily("pvc_node_memory_bytes", "Host memory", labels=["node", "kind"])
        for node in nodes:
            current = {
                "daemon": node.daemon_state,
                "coordinator": node.coordinator_state,
                "domain": node.domain_state,
            }
            for key, (family, states) in families.items():
                for state in states:
                    family.add_metric([node.name, state.value], int(current[key] == state.value))
            if node.keepalive:
                load.add_metric([node.name], node.keepalive.load)
                for kind, mib in vars(node.keepalive.memory_mib).items():
                    memory.add_metric([node.name, kind], mib * 2**20)
        yield GaugeMetricFamily("pvc_nodes", "Registered nodes", value=len(nodes))
        for family, _ in families.values():
            yield family
        yield load
        yield memory


def _render(*collectors: Collector) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return Response(generate_latest(registry), mimetype=TEXT)


@group.route("/metrics", summary="All metrics (Prometheus text)", role=None, content_type=TEXT)
def metrics():
    cache = ctx().cache
    return _render(_Health(cache), _Nodes(cache))


@group.route("/metrics/health", summary="Health and fault metrics", role=None, content_type=TEXT)
def metrics_health():
    return _render(_Health(ctx().cache))


@group.route("/metrics/resource", summary="Node resource and state metrics", role=None, content_type=TEXT)
def metrics_resource():
    return _render(_Nodes(ctx().cache))
