"""The text reports of ``/storage/ceph/status`` and ``/utilization``, like ``ceph status`` and ``ceph df``."""

from __future__ import annotations

from typing import Any

from pvc.cluster.session import Cluster
from pvc.cluster.status import requested_primary
from pvc.cluster.storage import queries
from pvc.storage.units import format_size

Json = dict[str, Any]


def _size(value: int | float) -> str:
    return format_size(int(value))


def status_text(record: Json) -> str:
    """A ``ceph status``-like report of the summary."""
    lines = ["  cluster:", f"    id:     {record.get('fsid', '')}", f"    health: {record.get('health', '')}"]
    for name, message in sorted(record.get("checks", {}).items()):
        lines.append(f"            {name}: {message}")
    quorum = ",".join(record.get("quorum", []))
    lines += [
        "",
        "  services:",
        f"    mon: {record.get('mons', 0)} daemons, quorum {quorum or '-'}",
        f"    mgr: {'available' if record.get('mgr_available') else 'NOT available'}",
        f"    osd: {record.get('osds', 0)} osds: {record.get('osds_up', 0)} up, "
        f"{record.get('osds_in', 0)} in",
        "",
        "  data:",
        f"    pools:   {record.get('pools', 0)} pools, {record.get('pgs', 0)} pgs",
        f"    objects: {record.get('objects', 0)} objects, {_size(record.get('data_bytes', 0))}",
        f"    usage:   {_size(record.get('used_bytes', 0))} used, "
        f"{_size(record.get('avail_bytes', 0))} / {_size(record.get('total_bytes', 0))} avail",
    ]
    by_state = record.get("pgs_by_state", {})
    states = [f"{count} {state}" for state, count in sorted(by_state.items())] or ["none"]
    lines.append(f"    pgs:     {states[0]}")
    lines += [f"             {entry}" for entry in states[1:]]
    lines += [
        "",
        "  io:",
        f"    client:   {_size(record.get('read_bytes_sec', 0))}/s rd, "
        f"{_size(record.get('write_bytes_sec', 0))}/s wr, {record.get('read_ops_sec', 0)} op/s rd, "
        f"{record.get('write_ops_sec', 0)} op/s wr",
    ]
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return lines


def utilization_text(record: Json) -> str:
    """A ``ceph df``-like report of raw capacity by device class and usage per pool."""
    raw_rows = [
        [
            name,
            _size(c.get("total_bytes", 0)),
            _size(c.get("avail_bytes", 0)),
            _size(c.get("used_bytes", 0)),
            f"{100.0 * c.get('used_bytes', 0) / c['total_bytes']:.2f}" if c.get("total_bytes") else "0.00",
        ]
        for name, c in sorted(record.get("by_class", {}).items())
    ]
    raw_rows.append(
        [
            "TOTAL",
            _size(record.get("total_bytes", 0)),
            _size(record.get("avail_bytes", 0)),
            _size(record.get("used_bytes", 0)),
            f"{record.get('used_percent', 0.0):.2f}",
        ]
    )
    pool_rows = [
        [
            p["name"],
            str(p.get("id", "")),
            _size(p.get("stored_bytes", 0)),
            str(p.get("objects", 0)),
            _size(p.get("used_bytes", 0)),
            f"{p.get('used_percent', 0.0):.2f}",
            _size(p.get("free_bytes", 0)),
        ]
        for p in record.get("pools", [])
    ]
    lines = ["--- RAW STORAGE ---", *_table(["CLASS", "SIZE", "AVAIL", "USED", "%USED"], raw_rows), ""]
    lines += ["--- POOLS ---"]
    lines += _table(["POOL", "ID", "STORED", "OBJECTS", "USED", "%USED", "MAX AVAIL"], pool_rows)
    return "\n".join(lines) + "\n"


def report(cluster: Cluster, kind: str) -> Json:
    """The v1 body of /storage/ceph/status (``kind`` status) or /utilization (``details`` holds the
    figures); NotFoundError before the primary first reached Ceph."""
    if kind == "status":
        record = queries.status_record(cluster)
        text = status_text(record)
    else:
        record = queries.utilization_record(cluster)
        text = utilization_text(record)
    return {"type": kind, "primary_node": requested_primary(cluster), "ceph_data": text, "details": record}
