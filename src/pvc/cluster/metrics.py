"""The cluster's Prometheus metrics (text format, ``pvc_`` prefix), from the cache.

Two sets: ``health`` (cluster health, maintenance, faults) and ``resource`` (node states,
load, memory and health where measured; VMs by state, client networks by type, OSDs by
state, pools, volumes, snapshots and Ceph's raw capacity, the same figures as ``/status``;
the provisioner database's members);
:func:`exposition` renders either or both. A figure the cluster does not know yet (a node's health before
anything measures it, Ceph's capacity before the first report) has no sample rather than
a made-up one.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pvc.cluster import status as status_mod
from pvc.cluster.faults import queries as faults_mod
from pvc.cluster.network import queries as network_queries
from pvc.cluster.node import queries as nodes_mod
from pvc.cluster.session import Cluster
from pvc.cluster.storage import queries as storage_mod
from pvc.db import members as database_members
from pvc.state import paths
from pvc.state.states import CoordinatorState, DaemonState, DomainState

#: The media type of the exposition format.
CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0]


class _Health(Collector):
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.cache = cluster.cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        faults = faults_mod.list_faults(self.cluster)
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
    def __init__(self, cluster: Cluster) -> None:
        self.cache = cluster.cache

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
        health = GaugeMetricFamily(
            "pvc_node_health", "Node health, 0-100 (only where measured)", labels=["node"]
        )
        for node in nodes:
            current = {
                "daemon": node.daemon_state,
                "coordinator": node.coordinator_state,
                "domain": node.domain_state,
            }
            for key, (family, states) in families.items():
                for state in states:
                    family.add_metric([node.name, state.value], int(current[key] == state.value))
            keepalive = nodes_mod.live_keepalive(node)  # none for a dead or fenced node
            if keepalive:
                load.add_metric([node.name], keepalive.load)
                for kind, mib in vars(keepalive.memory_mib).items():
                    memory.add_metric([node.name, kind], mib * 2**20)
                if keepalive.health is not None:
                    health.add_metric([node.name], keepalive.health)
        yield GaugeMetricFamily("pvc_nodes", "Registered nodes", value=len(nodes))
        for family, _ in families.values():
            yield family
        yield load
        yield memory
        yield health


class _Inventory(Collector):
    """What ``/status`` counts: VMs by state, networks by type, OSDs by state, pools, volumes,
    snapshots, raw disk."""

    def __init__(self, cluster: Cluster, database_scope: str = "") -> None:
        self.cluster = cluster
        self.database_scope = database_scope

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield _by_state("pvc_vms", "VMs by state", status_mod.vm_counts(self.cluster))
        networks = GaugeMetricFamily("pvc_networks", "Client networks by type", labels=["type"])
        for kind, count in network_queries.network_counts(self.cluster).items():
            if kind != "total":
                networks.add_metric([kind], count)
        yield networks
        osds = status_mod.osd_counts(storage_mod.list_osds(self.cluster))
        yield _by_state("pvc_osds", "Ceph OSDs by up|down,in|out", osds)
        for key, value in status_mod.storage_counts(self.cluster).items():
            yield GaugeMetricFamily(f"pvc_{key}", f"Ceph {key}", value=value)
        disk = GaugeMetricFamily("pvc_cluster_disk_bytes", "Ceph raw capacity", labels=["kind"])
        for kind, value in status_mod.disk_figures(self.cluster).items():
            if kind != "utilization" and isinstance(value, int):
                disk.add_metric([kind], value)
        yield disk
        yield from _database(self.cluster, self.database_scope)


def _database(cluster: Cluster, scope: str) -> Iterator[GaugeMetricFamily]:
    """The provisioner database's members by role and state, and whether one leads; no
    samples where its database has never registered (off, or not yet started)."""
    if not scope or not cluster.store.exists(paths.patroni_scope(scope)):
        return
    found = database_members.members(cluster.store, scope)
    counts: dict[tuple[str, str], int] = {}
    for member in found:
        key = (member.role or "unknown", member.state or "unknown")
        counts[key] = counts.get(key, 0) + 1
    family = GaugeMetricFamily(
        "pvc_database_members", "Provisioner database members by role and state", labels=["role", "state"]
    )
    for (role, state), count in sorted(counts.items()):
        family.add_metric([role, state], count)
    yield family
    leader = database_members.leader(cluster.store, scope)
    running = {m.name for m in found if m.state == "running"}
    yield GaugeMetricFamily(
        "pvc_database_leader", "1 while a running member leads the database", value=int(leader in running)
    )


def _by_state(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state, count in counts.items():
        if state != "total":
            family.add_metric([state], count)
    return family


class _Resources(Collector):
    """The ``resource`` set: nodes and inventory."""

    def __init__(self, cluster: Cluster, database_scope: str = "") -> None:
        self.parts = (_Nodes(cluster), _Inventory(cluster, database_scope))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for part in self.parts:
            yield from part.collect()


SETS = {"health": _Health, "resource": _Resources}


def exposition(cluster: Cluster, *sets: str, database_scope: str = "") -> bytes:
    """The metrics of ``sets`` (default: all of them) in Prometheus' text format;
    ``database_scope``: the cluster's name, which its database registers under."""
    registry = CollectorRegistry(auto_describe=False)
    for name in sets or tuple(SETS):
        collector = _Resources(cluster, database_scope) if name == "resource" else SETS[name](cluster)
        registry.register(collector)
    return generate_latest(registry)
