"""Faults as clients see them, and what cluster health is made of.

A fault has a stable id derived from what it is about, so raising the same condition
again updates the existing record (``last_reported``) instead of adding another.
Cluster health is 100 minus the deltas of every unacknowledged fault, never below 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pvc.cluster.errors import NotFoundError
from pvc.cluster.session import Cluster
from pvc.state import paths
from pvc.state.records import decode_json

STATUS_NEW = "new"
STATUS_ACK = "ack"
SORT_KEYS = ("first_reported", "last_reported", "acknowledged_at", "status", "health_delta", "message")


def now_text() -> str:
    """A fault timestamp: UTC, second resolution, sortable as text."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fault_id(kind: str, subject: str) -> str:
    """Stable id of the fault of ``kind`` about ``subject``."""
    return hashlib.sha1(f"{kind}:{subject}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Fault:
    id: str
    message: str
    health_delta: int
    first_reported: str
    last_reported: str
    status: str = STATUS_NEW
    acknowledged_at: str = ""

    def to_api(self) -> dict:
        return asdict(self)


def _decode(data: bytes | None) -> Fault | None:
    value = decode_json(data)
    if not isinstance(value, dict):
        return None
    try:
        return Fault(**{k: value[k] for k in Fault.__dataclass_fields__ if k in value})
    except TypeError:
        return None


def list_faults(cluster: Cluster, sort_key: str = "last_reported") -> list[Fault]:
    """Every fault, newest first by ``sort_key`` (text keys sort descending like PVC)."""
    cache = cluster.cache
    faults = [f for f in (_decode(cache.data(paths.fault(i))) for i in cache.children(paths.FAULTS)) if f]
    return sorted(faults, key=lambda fault: getattr(fault, sort_key), reverse=True)


def get_fault(cluster: Cluster, fid: str) -> Fault | None:
    """One fault, or None."""
    return _decode(cluster.cache.data(paths.fault(fid)))


def existing_fault(cluster: Cluster, fid: str) -> Fault:
    """One fault; NotFoundError if there is none with that id."""
    fault = get_fault(cluster, fid)
    if fault is None:
        raise NotFoundError(f"Fault '{fid}' not found")
    return fault


def cluster_health(faults: list[Fault]) -> int:
    """100 minus the deltas of unacknowledged faults, floor 0."""
    return max(0, 100 - sum(f.health_delta for f in faults if f.status != STATUS_ACK))
