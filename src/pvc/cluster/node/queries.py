"""Nodes as clients see them: the PVC v1 shape, lists and lookups (from the cache)."""

from __future__ import annotations

from pvc.cluster.errors import NotFoundError
from pvc.cluster.figures import known
from pvc.cluster.filters import matcher
from pvc.cluster.session import Cluster
from pvc.state.records import NodeRecord


def health(node: NodeRecord) -> int | str:
    """The node's health as its last keepalive reported it, N/A while nothing measures it."""
    return known(node.keepalive.health if node.keepalive else None)


def to_api(node: NodeRecord) -> dict:
    """A node in the PVC v1 shape; host figures are N/A until its first keepalive."""
    keepalive = node.keepalive
    memory = keepalive.memory_mib if keepalive else None
    return {
        "name": node.name,
        "daemon_state": node.daemon_state,
        "coordinator_state": node.coordinator_state,
        "domain_state": node.domain_state,
        "pvc_version": node.static.pvc_version,
        "cpu_count": node.static.cpu_count,
        "kernel": node.static.kernel,
        "os": node.static.os,
        "arch": node.static.arch,
        "health": health(node),
        "health_plugins": [],
        "health_details": [],
        "load": known(keepalive.load if keepalive else None),
        "domains_count": known(len(keepalive.domains) if keepalive else None),
        "running_domains": list(keepalive.domains) if keepalive else [],
        "vcpu": {
            "total": node.static.cpu_count,
            "allocated": known(keepalive.vcpu_allocated if keepalive else None),
        },
        "memory": {
            "total": known(memory.total if memory else None),
            "used": known(memory.used if memory else None),
            "free": known(memory.free if memory else None),
            "allocated": known(keepalive.memory_allocated if keepalive else None),
            "provisioned": known(keepalive.memory_provisioned if keepalive else None),
        },
        "interfaces": known(keepalive.interfaces if keepalive else None),
        "last_keepalive": keepalive.timestamp if keepalive else None,
    }


def list_nodes(
    cluster: Cluster,
    *,
    limit: str | None = None,
    daemon_state: str | None = None,
    coordinator_state: str | None = None,
    domain_state: str | None = None,
) -> list[NodeRecord]:
    """Nodes filtered like PVC: ``limit`` is a regular expression on the name (see
    :func:`pvc.cluster.filters.limit_pattern`), the states must match exactly."""
    matches = matcher(limit)
    result = []
    for node in cluster.cache.nodes():
        if not matches(node.name):
            continue
        if daemon_state and node.daemon_state != daemon_state:
            continue
        if coordinator_state and node.coordinator_state != coordinator_state:
            continue
        if domain_state and node.domain_state != domain_state:
            continue
        result.append(node)
    return result


def get_node(cluster: Cluster, name: str) -> NodeRecord:
    """One node; NotFoundError if it never registered."""
    node = cluster.cache.node(name)
    if node is None:
        raise NotFoundError(f"Node '{name}' not found")
    return node


def running_primary(cluster: Cluster) -> str | None:
    """The primary coordinator, if one is recorded and registered (where primary-only tasks run)."""
    name = cluster.cache.cluster_config().primary_node
    return name if name and cluster.cache.node(name) is not None else None
