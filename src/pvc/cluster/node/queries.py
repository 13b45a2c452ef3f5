"""Nodes as clients see them: the PVC v1 shape, lists and lookups (from the cache)."""

from __future__ import annotations

from pvc.cluster.errors import NotFoundError
from pvc.cluster.figures import known
from pvc.cluster.filters import matcher
from pvc.cluster.session import Cluster
from pvc.state import paths
from pvc.state.fencing import FenceRecord
from pvc.state.records import Keepalive, NodeRecord
from pvc.state.states import DaemonState

#: Daemon states in which a node's keepalive describes it as it is now.
ALIVE_STATES = frozenset({DaemonState.INIT, DaemonState.RUN, DaemonState.SHUTDOWN})
#: What a node's fence record shows (the rest is the fencer's bookkeeping).
FENCE_FIELDS = ("state", "fencer", "started", "attempt", "steps", "error", "recovered", "stranded", "done")


def live_keepalive(node: NodeRecord) -> Keepalive | None:
    """The node's last keepalive while its daemon is alive; None for a dead, fenced or
    stopped node, whose last keepalive tells of a past (its VMs may run elsewhere now)."""
    return node.keepalive if node.daemon_state in ALIVE_STATES else None


def health(node: NodeRecord) -> int | str:
    """The node's health as its last keepalive reported it, N/A while nothing measures it."""
    keepalive = live_keepalive(node)
    return known(keepalive.health if keepalive else None)


def last_fence(cluster: Cluster, name: str) -> dict | None:
    """The node's last fence as clients see it (no BMC credentials), or None."""
    record = FenceRecord.from_bytes(cluster.cache.data(paths.node_fence(name)))
    if record is None:
        return None
    view = {key: getattr(record, key) for key in FENCE_FIELDS}
    view["retry_at"] = record.retry_at if record.state == "failed" and record.retry_at else None
    return view


def node_view(cluster: Cluster, node: NodeRecord) -> dict:
    """A node in the PVC v1 shape, with its last fence."""
    return to_api(node, last_fence(cluster, node.name))


def to_api(node: NodeRecord, fence: dict | None = None) -> dict:
    """A node in the PVC v1 shape; host figures are N/A until its first keepalive, and
    while its daemon is not alive (a fenced node, powered off, runs no VM)."""
    keepalive = live_keepalive(node)
    memory = keepalive.memory_mib if keepalive else None
    fenced = node.daemon_state == DaemonState.FENCED
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
        "domains_count": 0 if fenced else known(len(keepalive.domains) if keepalive else None),
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
        "last_keepalive": node.keepalive.timestamp if node.keepalive else None,
        "fence": fence,
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
