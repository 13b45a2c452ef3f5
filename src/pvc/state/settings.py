"""Cluster-wide settings under ``/config``: the requested primary and maintenance mode.

Readers use :meth:`pvc.state.cache.ClusterCache.cluster_config`. ``/config/primary_node``
names the coordinator administrators want as primary (or ``none``); a takeover writes
the new primary's own name there, in the same transaction as its coordinator state.
"""

from __future__ import annotations

from pvc.state import paths
from pvc.state.store import Commit, Store, Transaction


def request_primary(store: Store, name: str) -> Commit:
    """Ask for ``name`` to become the primary coordinator (``none``: no preference)."""
    return store.set(paths.PRIMARY_NODE, name)


def add_primary(txn: Transaction, name: str) -> None:
    """Record ``name`` as the primary (or ``none``) in a caller's transaction."""
    txn.set(paths.PRIMARY_NODE, name)


def set_maintenance(store: Store, on: bool) -> Commit:
    """Turn maintenance mode on or off."""
    return store.set(paths.MAINTENANCE, "true" if on else "false")
