"""The cluster status document (``GET /status``), built from the cache alone, and maintenance mode."""

from __future__ import annotations

import json
from collections import Counter

import pvc
from pvc.cluster.errors import NotFoundError
from pvc.cluster.faults import queries as faults_mod
from pvc.cluster.figures import NOT_KNOWN
from pvc.cluster.network import queries as network_queries
from pvc.cluster.node import queries as nodes_mod
from pvc.cluster.session import Cluster
from pvc.cluster.storage import queries as storage_mod
from pvc.cluster.vm.listing import VmListing
from pvc.state import settings


def set_maintenance(cluster: Cluster, on: bool) -> str:
    """Turn maintenance mode on (no new faults are raised) or off."""
    cluster.settle(settings.set_maintenance(cluster.store, on))
    return f"Set cluster maintenance mode to {'true' if on else 'false'}"


def requested_primary(cluster: Cluster) -> str:
    """The coordinator recorded as primary (``none`` while there is none)."""
    return cluster.cache.cluster_config().primary_node


def status_json(cluster: Cluster, listing: VmListing, *, upstream_ip: str, cluster_name: str) -> bytes:
    """``GET /status`` as JSON: :func:`cluster_status` with ``detail.vm``, the full VM list.

    The VM list is joined in as the bytes ``listing`` keeps serialised (``GET /vm``'s body),
    so a large cluster's status costs no more than its VM list.
    """
    document = cluster_status(cluster, upstream_ip=upstream_ip, cluster_name=cluster_name)
    detail = document.pop("detail")
    head = json.dumps(document, separators=(",", ":")).encode()
    detail_head = json.dumps(detail, separators=(",", ":")).encode()
    vms = listing.render(listing.records())
    return b"".join((head[:-1], b',"detail":', detail_head[:-1], b',"vm":', vms, b"}}"))


def cluster_status(cluster: Cluster, *, upstream_ip: str, cluster_name: str) -> dict:
    """Everything ``pvc cluster status`` shows, in the PVC v1 shape, except ``detail.vm``
    (the full VM list, which :func:`status_json` adds)."""
    cache = cluster.cache
    config = cache.cluster_config()
    nodes = cache.nodes()
    faults = faults_mod.list_faults(cluster)
    open_faults = [f for f in faults if f.status != faults_mod.STATUS_ACK]
    node_counts = Counter(f"{n.daemon_state},{n.domain_state}" for n in nodes)
    osds = storage_mod.list_osds(cluster)
    return {
        "cluster_name": cluster_name or config.cluster_name,
        "cluster_health": {
            "health": faults_mod.cluster_health(faults),
            "messages": [
                {"id": f.id, "health_delta": f.health_delta, "text": f.message} for f in open_faults
            ],
        },
        "node_health": {n.name: {"health": nodes_mod.health(n), "messages": []} for n in nodes},
        "maintenance": "true" if config.maintenance else "false",
        "primary_node": config.primary_node,
        "pvc_version": pvc.__version__,
        "upstream_ip": upstream_ip,
        "nodes": {"total": len(nodes), **dict(sorted(node_counts.items()))},
        "vms": vm_counts(cluster),
        "networks": network_queries.network_counts(cluster)["total"],
        "osds": osd_counts(osds),
        **storage_counts(cluster),
        "resources": {
            "memory": memory_figures(nodes),
            "cpu": cpu_figures(nodes),
            "disk": disk_figures(cluster),
        },
        "detail": {
            "node": [nodes_mod.node_view(cluster, n) for n in nodes],
            "osd": osds,
            "faults": [f.to_api() for f in faults],
        },
    }


def memory_figures(nodes: list) -> dict:
    """The memory in MiB of the nodes that are alive, as their keepalives report it (N/A
    while none reports)."""
    reports = [k for k in map(nodes_mod.live_keepalive, nodes) if k]
    if not reports:
        return dict.fromkeys(("total", "used", "free", "allocated", "provisioned", "utilization"), NOT_KNOWN)
    total = sum(k.memory_mib.total for k in reports)
    used = sum(k.memory_mib.used for k in reports)
    return {
        "total": total,
        "used": used,
        "free": total - used,
        "allocated": sum(k.memory_allocated for k in reports),
        "provisioned": sum(k.memory_provisioned for k in reports),
        "utilization": round(100 * used / total, 2) if total else NOT_KNOWN,
    }


def cpu_figures(nodes: list) -> dict:
    """The CPUs, load and allocated vCPUs of the nodes that are alive (load N/A while no
    node reports)."""
    reports = [k for k in map(nodes_mod.live_keepalive, nodes) if k]
    total = sum(n.static.cpu_count for n in nodes if n.daemon_state in nodes_mod.ALIVE_STATES)
    if not reports:
        return {"total": total, "load": NOT_KNOWN, "allocated": NOT_KNOWN, "utilization": NOT_KNOWN}
    load = round(sum(k.load for k in reports), 2)
    return {
        "total": total,
        "load": load,
        "allocated": sum(k.vcpu_allocated for k in reports),
        "utilization": round(100 * load / total, 2) if total else NOT_KNOWN,
    }


def vm_counts(cluster: Cluster) -> dict[str, int]:
    """VMs by state plus ``total`` (v1: ``{"start": 3, "total": 3}``)."""
    cache = cluster.cache
    placements = (cache.vm_placement(uuid) for uuid in cache.vm_uuids())
    states = Counter(str(placement.state) for placement in placements if placement is not None)
    return {"total": sum(states.values()), **dict(sorted(states.items()))}


def storage_counts(cluster: Cluster) -> dict[str, int]:
    """How many pools, volumes and snapshots the cluster has (``/status`` keys)."""
    return {
        "pools": len(storage_mod.pool_names(cluster)),
        "volumes": len(storage_mod.list_volumes(cluster)),
        "snapshots": len(storage_mod.list_snapshots(cluster)),
    }


def osd_counts(osds: list[dict]) -> dict[str, int]:
    """OSDs by ``up|down,in|out`` plus ``total`` (v1: ``{"up,in": 3, "total": 3}``)."""
    states = Counter(
        f"{'up' if osd['stats']['up'] else 'down'},{'in' if osd['stats']['in'] else 'out'}" for osd in osds
    )
    return {"total": len(osds), **dict(sorted(states.items()))}


def disk_figures(cluster: Cluster) -> dict[str, int | float | str]:
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
