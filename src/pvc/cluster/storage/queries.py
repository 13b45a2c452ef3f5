"""Storage as the API shows it: the Ceph mirror in the cache, in the PVC v1 shapes.

Everything here reads the watch-maintained cache (the primary refreshes the mirror
every ``storage.stats_interval``; the API refreshes what it changes at once). Lists
take PVC's ``limit`` (a regular expression, see :func:`pvc.cluster.filters.limit_pattern`).
The text reports of ``/storage/ceph/status`` and ``/utilization`` are in :mod:`.reports`.
"""

from __future__ import annotations

import math
from typing import Any

from pvc.cluster.errors import NotFoundError
from pvc.cluster.figures import NOT_KNOWN, known
from pvc.cluster.filters import matcher
from pvc.cluster.session import Cluster
from pvc.state import osd_devices, paths
from pvc.state.cache import ClusterCache
from pvc.state.osd_devices import OsdDevice
from pvc.state.records import decode_json
from pvc.storage.units import format_size

Json = dict[str, Any]


def _record(cache: ClusterCache, path: str) -> Json | None:
    value = decode_json(cache.data(path))
    return value if isinstance(value, dict) else None


def _size(value: int | float) -> str:
    return format_size(int(value))


def _kib_size(kib: int | None) -> str:
    """A size given in KiB, in PVC's notation; N/A when not known."""
    return NOT_KNOWN if kib is None else _size(kib * 1024)


# --- OSDs -------------------------------------------------------------------------------


def _osd_io(cache: ClusterCache) -> Json:
    """Every OSD's client I/O rates by id (as text), as the primary last measured them."""
    return _record(cache, paths.CEPH_OSD_IO) or {}


def _osd_view(osd: Json, placement: OsdDevice, io: Json) -> Json:
    node = placement.node or osd.get("host") or ""
    state = osd.get("state") or []
    return {
        "id": str(osd["id"]),
        "node": node,
        "device": placement.device,
        "db_device": placement.db_device,
        "stats": {
            "uuid": osd.get("uuid", ""),
            "up": int(bool(osd.get("up"))),
            "in": int(bool(osd.get("in_", osd.get("in")))),
            "primary_affinity": osd.get("primary_affinity", 0.0),
            "utilization": known(osd.get("utilization")),
            "var": known(osd.get("var")),
            "pgs": known(osd.get("pgs")),
            "kb": known(osd.get("kb")),
            "weight": osd.get("weight", 0.0),
            "reweight": osd.get("reweight", 0.0),
            "node": node,
            "used": _kib_size(osd.get("kb_used")),
            "avail": _kib_size(osd.get("kb_avail")),
            # N/A until the primary has two samples of the OSD's counters
            "wr_ops": known(io.get("wr_ops")),
            "rd_ops": known(io.get("rd_ops")),
            "wr_data": known(io.get("wr_data")),
            "rd_data": known(io.get("rd_data")),
            "state": ",".join(state) if isinstance(state, list) else str(state),
        },
    }


def osd_ids(cluster: Cluster) -> list[int]:
    """The OSD ids in the mirror, ascending."""
    return sorted(int(name) for name in cluster.cache.children(paths.CEPH_OSDS) if name.isdigit())


def list_osds(cluster: Cluster, limit: str | None = None) -> list[Json]:
    """OSDs in the v1 shape, by id; ``limit`` matches the id."""
    cache = cluster.cache
    matches = matcher(limit)
    io = _osd_io(cache)
    result = []
    for osd_id in osd_ids(cluster):
        osd = _record(cache, paths.ceph_osd(osd_id))
        if osd is not None and matches(str(osd_id)):
            result.append(_osd_view(osd, osd_devices.read(cache.data, osd_id), io.get(str(osd_id), {})))
    return result


def get_osd(cluster: Cluster, osd_id: str) -> Json:
    """One OSD in the v1 shape; NotFoundError if Ceph has no such OSD."""
    cache = cluster.cache
    osd = _record(cache, paths.ceph_osd(osd_id)) if osd_id.isdigit() else None
    if osd is None:
        raise NotFoundError(f"OSD {osd_id} not found")
    return _osd_view(osd, osd_devices.read(cache.data, osd_id), _osd_io(cache).get(str(osd_id), {}))


# --- pools --------------------------------------------------------------------------------


def _pool_view(cache: ClusterCache, pool: Json) -> Json:
    name = pool["name"]
    return {
        "name": name,
        "volume_count": len(cache.children(paths.ceph_pool_volumes(name))),
        "tier": pool.get("tier", "default"),
        "pgs": pool.get("pg_num", 0),
        "replication": f"copies={pool.get('copies', 0)},mincopies={pool.get('mincopies', 0)}",
        "stats": {
            "id": pool.get("id", 0),
            "stored_bytes": known(pool.get("stored_bytes")),
            "free_bytes": known(pool.get("free_bytes")),
            "used_bytes": known(pool.get("used_bytes")),
            "used_percent": known(pool.get("used_percent")),
            "num_objects": known(pool.get("objects")),
            "num_object_clones": known(pool.get("object_clones")),
            "num_object_copies": known(pool.get("object_copies")),
            "num_objects_missing_on_primary": known(pool.get("objects_missing")),
            "num_objects_unfound": known(pool.get("objects_unfound")),
            "num_objects_degraded": known(pool.get("objects_degraded")),
            "read_ops": known(pool.get("read_ops")),
            "read_bytes": known(pool.get("read_bytes")),
            "write_ops": known(pool.get("write_ops")),
            "write_bytes": known(pool.get("write_bytes")),
        },
    }


def pool_names(cluster: Cluster) -> list[str]:
    """Pools in the mirror, by name."""
    return sorted(cluster.cache.children(paths.CEPH_POOLS))


def list_pools(cluster: Cluster, limit: str | None = None) -> list[Json]:
    """Pools in the v1 shape; ``limit`` matches the name."""
    cache = cluster.cache
    matches = matcher(limit)
    result = []
    for name in pool_names(cluster):
        pool = _record(cache, paths.ceph_pool(name))
        if pool is not None and matches(name):
            result.append(_pool_view(cache, pool))
    return result


def get_pool(cluster: Cluster, name: str) -> Json:
    """One pool in the v1 shape; NotFoundError if there is none of that name."""
    cache = cluster.cache
    pool = _record(cache, paths.ceph_pool(name))
    if pool is None:
        raise NotFoundError(f"Pool '{name}' not found")
    return _pool_view(cache, pool)


# --- volumes and snapshots ------------------------------------------------------------------


def _volume_view(volume: Json) -> Json:
    object_size = int(volume.get("object_size", 0))
    return {
        "name": volume["name"],
        "pool": volume["pool"],
        "stats": {
            "name": volume["name"],
            "id": volume.get("id", ""),
            "size": volume.get("size_human") or _size(volume.get("size", 0)),
            "size_bytes": volume.get("size", 0),
            "objects": volume.get("objects", 0),
            "order": int(math.log2(object_size)) if object_size > 0 else 0,
            "object_size": object_size,
            "snapshot_count": volume.get("snapshots", 0),
            "block_name_prefix": f"rbd_data.{volume.get('id', '')}",
            "format": 2,
            "features": volume.get("features", []),
            # Not read from Ceph (yet): shown as not known, not as "none" or the creation time.
            "op_features": volume.get("op_features", NOT_KNOWN),
            "flags": volume.get("flags", NOT_KNOWN),
            "create_timestamp": volume.get("created", NOT_KNOWN),
            "access_timestamp": volume.get("accessed", NOT_KNOWN),
            "modify_timestamp": volume.get("modified", NOT_KNOWN),
            "parent": volume.get("parent"),
        },
    }


def list_volumes(cluster: Cluster, limit: str | None = None, pool: str | None = None) -> list[Json]:
    """Volumes in the v1 shape, by pool and name; ``limit`` matches the name."""
    cache = cluster.cache
    matches = matcher(limit)
    result = []
    for pool_name in [pool] if pool else sorted(cache.children(paths.CEPH_VOLUMES)):
        for name in sorted(cache.children(paths.ceph_pool_volumes(pool_name))):
            volume = _record(cache, paths.ceph_volume(pool_name, name))
            if volume is not None and matches(name):
                result.append(_volume_view(volume))
    return result


def volume_record(cluster: Cluster, pool: str, name: str) -> Json | None:
    """A volume's mirror record, or None."""
    return _record(cluster.cache, paths.ceph_volume(pool, name))


def get_volume(cluster: Cluster, pool: str, name: str) -> Json:
    """One volume in the v1 shape; NotFoundError if there is none."""
    volume = volume_record(cluster, pool, name)
    if volume is None:
        raise NotFoundError(f"Volume '{name}' not found in pool '{pool}'")
    return _volume_view(volume)


def _snapshot_view(snapshot: Json) -> Json:
    return {
        "snapshot": snapshot["name"],
        "volume": snapshot["volume"],
        "pool": snapshot["pool"],
        "size": _size(snapshot.get("size", 0)),
        "protected": bool(snapshot.get("protected")),
        "created": snapshot.get("created", ""),
    }


def list_snapshots(
    cluster: Cluster, limit: str | None = None, pool: str | None = None, volume: str | None = None
) -> list[Json]:
    """Snapshots in the v1 shape; ``limit`` matches the snapshot name."""
    cache = cluster.cache
    matches = matcher(limit)
    result = []
    for pool_name in [pool] if pool else sorted(cache.children(paths.CEPH_SNAPSHOTS)):
        parent = paths.ceph_pool_snapshots(pool_name)
        for volume_name in [volume] if volume else sorted(cache.children(parent)):
            for name in sorted(cache.children(paths.ceph_volume_snapshots(pool_name, volume_name))):
                snapshot = _record(cache, paths.ceph_snapshot(pool_name, volume_name, name))
                if snapshot is not None and matches(name):
                    result.append(_snapshot_view(snapshot))
    return result


def get_snapshot(cluster: Cluster, pool: str, volume: str, name: str) -> Json:
    """One snapshot in the v1 shape; NotFoundError if there is none."""
    cache = cluster.cache
    snapshot = _record(cache, paths.ceph_snapshot(pool, volume, name))
    if snapshot is None:
        raise NotFoundError(f"Snapshot '{name}' of volume '{pool}/{volume}' not found")
    return _snapshot_view(snapshot)


# --- status and utilization ------------------------------------------------------------------


def status_record(cluster: Cluster) -> Json:
    """The mirrored ``ceph status`` summary (NotFoundError before the first refresh)."""
    record = _record(cluster.cache, paths.CEPH_STATUS)
    if record is None:
        raise NotFoundError("No storage status yet: Ceph is not configured or not yet reached by the primary")
    return record


def utilization_record(cluster: Cluster) -> Json:
    """The mirrored ``ceph df`` summary (NotFoundError before the first refresh)."""
    record = _record(cluster.cache, paths.CEPH_UTIL)
    if record is None:
        raise NotFoundError("No storage utilization yet: Ceph is not configured or not yet reached")
    return record
