"""Raising, acknowledging and deleting faults."""

from __future__ import annotations

from dataclasses import asdict

from pvc.cluster.faults.queries import (
    STATUS_ACK,
    Fault,
    existing_fault,
    fault_id,
    get_fault,
    list_faults,
    now_text,
)
from pvc.cluster.session import Cluster
from pvc.state import paths
from pvc.state.records import encode
from pvc.state.store import Commit, Transaction


def report(
    cluster: Cluster, kind: str, subject: str, delta: int, message: str, *, maintenance: bool
) -> str | None:
    """Raise a fault or refresh it; returns a sentence when a new one was raised.

    In maintenance mode new faults are not raised (existing ones are still refreshed).
    """
    fid = fault_id(kind, subject)
    existing = get_fault(cluster, fid)
    stamp = now_text()
    if existing is None:
        if maintenance:
            return None
        cluster.store.set(paths.fault(fid), encode(Fault(fid, message, delta, stamp, stamp)))
        return f"raised fault {fid}: {message}"
    refreshed = {**asdict(existing), "last_reported": stamp, "message": message}
    cluster.store.set(paths.fault(fid), encode(refreshed))
    return None


def clear(cluster: Cluster, kind: str, subject: str) -> str | None:
    """Delete the fault of a condition that has gone; returns a sentence if there was one."""
    fid = fault_id(kind, subject)
    if get_fault(cluster, fid) is None:
        return None
    cluster.store.delete(paths.fault(fid))
    return f"cleared fault {fid}: the condition is gone"


def _acknowledge(cluster: Cluster, faults: list[Fault]) -> tuple[int, Commit]:
    txn = Transaction()
    stamp = now_text()
    for fault in faults:
        if fault.status != STATUS_ACK:
            txn.set(
                paths.fault(fault.id),
                encode({**asdict(fault), "status": STATUS_ACK, "acknowledged_at": stamp}),
            )
    return len(txn), cluster.store.commit(txn)


def _delete(cluster: Cluster, faults: list[Fault]) -> tuple[int, Commit]:
    txn = Transaction()
    for fault in faults:
        txn.delete(paths.fault(fault.id))
    return len(txn), cluster.store.commit(txn)


def acknowledge_all(cluster: Cluster) -> str:
    """Acknowledge every fault (one transaction)."""
    count, commit = _acknowledge(cluster, list_faults(cluster))
    cluster.settle(commit)
    return f"Acknowledged {count} faults"


def delete_all(cluster: Cluster) -> str:
    """Delete every fault (one transaction)."""
    count, commit = _delete(cluster, list_faults(cluster))
    cluster.settle(commit)
    return f"Deleted {count} faults"


def acknowledge(cluster: Cluster, fid: str) -> str:
    """Acknowledge one fault; NotFoundError if there is none with that id."""
    _, commit = _acknowledge(cluster, [existing_fault(cluster, fid)])
    cluster.settle(commit)
    return f"Acknowledged fault {fid}"


def delete(cluster: Cluster, fid: str) -> str:
    """Delete one fault; NotFoundError if there is none with that id."""
    _, commit = _delete(cluster, [existing_fault(cluster, fid)])
    cluster.settle(commit)
    return f"Deleted fault {fid}"
