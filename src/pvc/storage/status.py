"""Cluster health, utilization and readiness."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError, StorageTimeout

#: the only PG state a ready cluster has
#: Background work a clean PG may be doing: its data is placed, complete and available.
BACKGROUND_STATES = frozenset({"scrubbing", "deep", "snaptrim", "snaptrim_wait"})


def reported(stats: dict[str, Any], key: str, kind: type = int) -> Any:
    """``stats[key]`` as ``kind``, or None when Ceph did not report it (not known yet)."""
    value = stats.get(key)
    return None if value is None else kind(value)


def pg_is_clean(state: str) -> bool:
    """Whether a PG state (``active+clean+snaptrim``) is active+clean, background work aside."""
    parts = set(state.split("+"))
    return {"active", "clean"} <= parts and parts - {"active", "clean"} <= BACKGROUND_STATES


@dataclass
class ClusterStatus:
    """A summary of ``ceph status``: health, daemons, PGs and I/O."""

    fsid: str
    health: str
    checks: dict[str, str] = field(default_factory=dict)
    mons: int = 0
    quorum: list[str] = field(default_factory=list)
    mgr_available: bool = False
    osds: int = 0
    osds_up: int = 0
    osds_in: int = 0
    pools: int = 0
    pgs: int = 0
    pgs_by_state: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    data_bytes: int = 0
    used_bytes: int = 0
    avail_bytes: int = 0
    total_bytes: int = 0
    read_bytes_sec: int = 0
    write_bytes_sec: int = 0
    read_ops_sec: int = 0
    write_ops_sec: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


@dataclass
class Utilization:
    """Raw capacity of the cluster (bytes), by device class, and per pool."""

    total_bytes: int
    used_bytes: int
    avail_bytes: int
    used_percent: float
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    pools: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


def _summarise(raw: dict[str, Any]) -> ClusterStatus:
    health = raw.get("health", {})
    osdmap = raw.get("osdmap", {})
    # before Octopus osdmap was nested once more
    osdmap = osdmap.get("osdmap", osdmap)
    pgmap = raw.get("pgmap", {})
    return ClusterStatus(
        fsid=raw.get("fsid", ""),
        health=health.get("status", "HEALTH_UNKNOWN"),
        checks={
            name: check.get("summary", {}).get("message", "")
            for name, check in health.get("checks", {}).items()
        },
        mons=int(raw.get("monmap", {}).get("num_mons", 0)),
        quorum=list(raw.get("quorum_names", [])),
        mgr_available=bool(raw.get("mgrmap", {}).get("available")),
        osds=int(osdmap.get("num_osds", 0)),
        osds_up=int(osdmap.get("num_up_osds", 0)),
        osds_in=int(osdmap.get("num_in_osds", 0)),
        pools=int(pgmap.get("num_pools", 0)),
        pgs=int(pgmap.get("num_pgs", 0)),
        pgs_by_state={s["state_name"]: int(s["count"]) for s in pgmap.get("pgs_by_state", [])},
        objects=int(pgmap.get("num_objects", 0)),
        data_bytes=int(pgmap.get("data_bytes", 0)),
        used_bytes=int(pgmap.get("bytes_used", 0)),
        avail_bytes=int(pgmap.get("bytes_avail", 0)),
        total_bytes=int(pgmap.get("bytes_total", 0)),
        read_bytes_sec=int(pgmap.get("read_bytes_sec", 0)),
        write_bytes_sec=int(pgmap.get("write_bytes_sec", 0)),
        read_ops_sec=int(pgmap.get("read_op_per_sec", 0)),
        write_ops_sec=int(pgmap.get("write_op_per_sec", 0)),
    )


def cluster_status(client: CephClient) -> ClusterStatus:
    """The cluster's status summary."""
    return _summarise(client.mon_command("status"))


def utilization(client: CephClient) -> Utilization:
    """Capacity and usage from ``df``."""
    raw = client.mon_command("df")
    stats = raw.get("stats", {})
    total = int(stats.get("total_bytes", 0))
    used = int(stats.get("total_used_raw_bytes", stats.get("total_used_bytes", 0)))
    return Utilization(
        total_bytes=total,
        used_bytes=used,
        avail_bytes=int(stats.get("total_avail_bytes", 0)),
        used_percent=round(100.0 * used / total, 4) if total else 0.0,
        by_class={
            name: {
                "total_bytes": int(c.get("total_bytes", 0)),
                "used_bytes": int(c.get("total_used_raw_bytes", c.get("total_used_bytes", 0))),
                "avail_bytes": int(c.get("total_avail_bytes", 0)),
            }
            for name, c in raw.get("stats_by_class", {}).items()
        },
        pools=[
            {
                "name": p["name"],
                "id": int(p["id"]),
                "stored_bytes": int(p["stats"].get("stored", 0)),
                "used_bytes": int(p["stats"].get("bytes_used", 0)),
                "free_bytes": int(p["stats"].get("max_avail", 0)),
                "objects": int(p["stats"].get("objects", 0)),
                "used_percent": round(float(p["stats"].get("percent_used", 0.0)) * 100, 4),
            }
            for p in raw.get("pools", [])
        ],
    )


def readiness(
    client: CephClient, expected_osds: int, *, require_pgs: bool = True, require_health_ok: bool = True
) -> list[str]:
    """What keeps the cluster from being ready; an empty list when it is ready.

    Ready means: the manager is available, ``expected_osds`` OSDs are up and in, PGs exist
    (unless not ``require_pgs``), every PG is active+clean (scrubbing or trimming snapshots
    aside) and (with ``require_health_ok``)
    health is HEALTH_OK. HEALTH_OK alone is not enough: it is reported before the manager
    is active and before any pool exists.
    """
    status = cluster_status(client)
    problems = []
    if not status.mgr_available:
        problems.append("no manager available")
    if status.osds_up < expected_osds or status.osds_in < expected_osds:
        problems.append(f"OSDs up/in {status.osds_up}/{status.osds_in} of {expected_osds}")
    if require_pgs and status.pgs == 0:
        problems.append("no PGs yet")
    unclean = {state: n for state, n in status.pgs_by_state.items() if not pg_is_clean(state)}
    if unclean:
        problems.append(
            "PGs not active+clean: " + ", ".join(f"{n} {state}" for state, n in sorted(unclean.items()))
        )
    if require_health_ok and status.health != "HEALTH_OK":
        details = "; ".join(f"{name}: {message}" for name, message in sorted(status.checks.items()))
        problems.append(f"{status.health} ({details})" if details else status.health)
    return problems


def is_ready(client: CephClient, expected_osds: int, *, require_health_ok: bool = True) -> bool:
    """True if the cluster is ready (see :func:`readiness`)."""
    return not readiness(client, expected_osds, require_health_ok=require_health_ok)


def pg_stats_version(client: CephClient) -> int:
    """The version of the manager's PG statistics; it grows with every stats period."""
    summary = client.mgr_command("pg dump", dumpcontents=["summary"]) or {}
    return int(summary.get("pg_map", summary).get("version", 0))


def wait_fresh_pg_stats(client: CephClient, timeout: float = 30.0) -> None:
    """Wait until the manager's PG statistics were refreshed twice since the call.

    PG states (and what is built on them: readiness, safe-to-destroy) lag a change such as
    marking an OSD out by up to two ``mgr stats period``s; without this wait a check made
    right after the change may answer from the state before it.
    """
    target = pg_stats_version(client) + 2
    deadline = time.monotonic() + timeout
    while pg_stats_version(client) < target:
        if time.monotonic() > deadline:
            raise StorageTimeout(f"PG statistics not refreshed within {timeout:.0f} s")
        time.sleep(0.2)


def wait_ready(
    client: CephClient,
    expected_osds: int,
    timeout: float,
    *,
    require_pgs: bool = True,
    after_change: bool = False,
) -> None:
    """Wait until the cluster is ready; StorageTimeout listing what is not, after ``timeout`` s.

    With ``after_change`` (an OSD marked in or out, a pool created or deleted) fresh PG
    statistics are awaited first, so the answer is not the state from before the change.
    """
    deadline = time.monotonic() + timeout
    if after_change:
        wait_fresh_pg_stats(client, timeout)
    problems: list[str] = []
    while time.monotonic() < deadline:
        try:
            problems = readiness(client, expected_osds, require_pgs=require_pgs)
        except StorageError as exc:
            problems = [str(exc)]
        if not problems:
            return
        time.sleep(0.5)
    raise StorageTimeout(f"Ceph not ready after {timeout:.0f} s: {'; '.join(problems)}")
