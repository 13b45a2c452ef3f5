"""Faults: persistent problems that lower the cluster's health until acknowledged.

A fault has a stable id derived from what it is about, so raising the same condition
again updates the existing record (``last_reported``) instead of adding another.
Cluster health is 100 minus the deltas of every unacknowledged fault, never below 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.records import decode_json, encode
from pvc.state.store import Store, Transaction

STATUS_NEW = "new"
STATUS_ACK = "ack"
SORT_KEYS = ("first_reported", "last_reported", "acknowledged_at", "status", "health_delta", "message")

#: Health deltas of the faults PVC raises itself.
DELTA_DEAD_NODE = 50
DELTA_DAEMON_NOT_RUNNING = 25
DELTA_VM_FAILED = 10
DELTA_MEMORY_OVERPROVISIONED = 25


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


def list_faults(cache: ClusterCache, sort_key: str = "last_reported") -> list[Fault]:
    """Every fault, newest first by ``sort_key`` (text keys sort descending like PVC)."""
    faults = [f for f in (_decode(cache.data(paths.fault(i))) for i in cache.children(paths.FAULTS)) if f]
    return sorted(faults, key=lambda fault: getattr(fault, sort_key), reverse=True)


def get_fault(cache: ClusterCache, fid: str) -> Fault | None:
    return _decode(cache.data(paths.fault(fid)))


def cluster_health(faults: list[Fault]) -> int:
    """100 minus the deltas of unacknowledged faults, floor 0."""
    return max(0, 100 - sum(f.health_delta for f in faults if f.status != STATUS_ACK))


def report(
    store: Store, cache: ClusterCache, kind: str, subject: str, delta: int, message: str, *, maintenance: bool
) -> str | None:
    """Raise a fault or refresh it; returns a sentence when something was written.

    In maintenance mode new faults are not raised (existing ones are still refreshed).
    """
    fid = fault_id(kind, subject)
    existing = get_fault(cache, fid)
    stamp = now_text()
    if existing is None:
        if maintenance:
            return None
        fault = Fault(fid, message, delta, stamp, stamp)
        store.set(paths.fault(fid), encode(fault))
        return f"raised fault {fid}: {message}"
    store.set(paths.fault(fid), encode({**asdict(existing), "last_reported": stamp, "message": message}))
    return None


def acknowledge(store: Store, cache: ClusterCache, fids: list[str]) -> int:
    """Acknowledge faults (one transaction); returns how many changed."""
    txn = Transaction()
    stamp = now_text()
    for fid in fids:
        fault = get_fault(cache, fid)
        if fault and fault.status != STATUS_ACK:
            txn.set(
                paths.fault(fid), encode({**asdict(fault), "status": STATUS_ACK, "acknowledged_at": stamp})
            )
    store.commit(txn)
    return len(txn)


def delete(store: Store, fids: list[str]) -> int:
    """Delete faults (one transaction); returns how many."""
    txn = Transaction()
    for fid in fids:
        txn.delete(paths.fault(fid))
    store.commit(txn)
    return len(txn)
