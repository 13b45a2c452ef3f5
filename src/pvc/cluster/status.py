"""The cluster status document (``GET /status``), built from the cache alone, and maintenance mode."""

from __future__ import annotations

from collections import Counter

import pvc
from pvc.cluster.errors import NotFoundError
from pvc.cluster.faults import queries as faults_mod
from pvc.cluster.figures import NOT_KNOWN
from pvc.cluster.node import queries as nodes_mod
from pvc.cluster.session import Cluster
from pvc.cluster.storage import queries as storage_mod
from pvc.state import settings


def set_maintenance(cluster: Cluster, on: bool) -> str:
    """Turn maintenance mode on (no new faults are raised) or off."""
    cluster.settle(settings.set_maintenance(cluster.store, on))
    return f"Set cluster maintenance mode to {'true' if on else 'false'}"


def requested_primary(cluster: Cluster) -> str:
    """The coordinator recorded as primary (``none`` while there is none)."""
    return cluster.cache.cluster_config().primary_node


def cluster_status(cluster: Cluster, *, upstream_ip: str, cluster_name: str) -> dict:
    """Everything ``pvc cluster status`` shows, in the PVC v1 shape."""
    cache = cluster.cache
    config = cache.cluster_config()
    nodes = cache.nodes()
    faults = faults_mod.list_faults(cluster)
    open_faults = [f for f in faults if f.status != faults_mod.STATUS_ACK]
    node_counts = Counter(f"{n.daemon_state},{n.domain_state}" for n in nodes)
    memory = [n.keepalive.memory_mib for n in nodes if n.keepalive]
    mem_total = sum(m.total for m in memory)
    mem_used = sum(m.used for m in memory)
    cpu_total = sum(n.static.cpu_count for n in nodes)
    load = round(sum(n.keepalive.load for n in nodes if n.keepalive), 2)
    osds = storage_mod.list_osds(cluster)
    return {
        "cluster_name": cluster_name or config.cluster_name,
        "cluster_health": {
            "health": faults_mod.cluster_health(faults),
            "messages": [
                {"id": f.id, "health_delta": f.health_delta, "text": f.message} for f in open_faults
            ],
        },
        "node_health": {n.name: {"health": 100, "messages": []} for n in nodes},
        "maintenance": "true" if config.maintenance else "false",
        "primary_node": config.primary_node,
        "pvc_version": pvc.__version__,
        "upstream_ip": upstream_ip,
        "nodes": {"total": len(nodes), **dict(sorted(node_counts.items()))},
        "vms": _vm_counts(cluster),
        "networks": 0,  # client networks do not exist yet: none is the true count
        "osds": _osd_counts(osds),
        "pools": len(storage_mod.pool_names(cluster)),
        "volumes": len(storage_mod.list_volumes(cluster)),
        "snapshots": len(storage_mod.list_snapshots(cluster)),
        "resources": {
            "memory": {
                "total": mem_total,
                "used": mem_used,
                "free": mem_total - mem_used,
                "allocated": sum(n.keepalive.memory_allocated for n in nodes if n.keepalive),
                "provisioned": sum(n.keepalive.memory_provisioned for n in nodes if n.keepalive),
                "utilization": round(100 * mem_used / mem_total, 2) if mem_total else 0.0,
            },
            "cpu": {
                "total": cpu_total,
                "load": load,
                "allocated": sum(n.keepalive.vcpu_allocated for n in nodes if n.keepalive),
                "utilization": round(100 * load / cpu_total, 2) if cpu_total else 0.0,
            },
            "disk": _disk(cluster),
        },
        "detail": {
            "node": [nodes_mod.to_api(n) for n in nodes],
            "vm": [],
            "osd": osds,
            "faults": [f.to_api() for f in faults],
        },
    }


def _vm_counts(cluster: Cluster) -> dict[str, int]:
    """VMs by state plus ``total`` (v1: ``{"start": 3, "total": 3}``)."""
    cache = cluster.cache
    placements = (cache.vm_placement(uuid) for uuid in cache.vm_uuids())
    states = Counter(str(placement.state) for placement in placements if placement is not None)
    return {"total": sum(states.values()), **dict(sorted(states.items()))}


def _osd_counts(osds: list[dict]) -> dict[str, int]:
    """OSDs by ``up|down,in|out`` plus ``total`` (v1: ``{"up,in": 3, "total": 3}``)."""
    states = Counter(
        f"{'up' if osd['stats']['up'] else 'down'},{'in' if osd['stats']['in'] else 'out'}" for osd in osds
    )
    return {"total": len(osds), **dict(sorted(states.items()))}


def _disk(cluster: Cluster) -> dict[str, int | float | str]:
    """Raw Ceph capacity in bytes from the mirrored ``ceph df``; N/A before it is known."""
    try:
        util = storage_mod.utilization_record(cluster)
    except NotFoundError:
        return dict.fromkeys(("total", "used", "free", "utilization"), NOT_KNOWN)
    return {
        "total": util["total_bytes"],
        "used": util["used_bytes"],
        "free": util["avail_bytes"],
        "utilization": util["used_percent"],
    }
