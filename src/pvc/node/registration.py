"""Registering a node daemon in ZooKeeper."""

from __future__ import annotations

from pvc.state import paths
from pvc.state.records import NodeStatic, encode
from pvc.state.states import CoordinatorState, DaemonState, DomainState, NodeMode
from pvc.state.store import Store, Transaction


def _create_or_set(store: Store, txn: Transaction, path: str, value: str | bytes) -> None:
    if store.exists(path):
        txn.set(path, value)
    else:
        txn.create(path, value)


def register(store: Store, static: NodeStatic) -> None:
    """Write the node's static record and initial states, and announce its presence.

    One transaction: the node appears complete or not at all. The domain state of a
    node that registered before is kept (a flushed node stays flushed across restarts).
    """
    name = static.name
    coordinator_state = (
        CoordinatorState.SECONDARY if static.mode == NodeMode.COORDINATOR else CoordinatorState.CLIENT
    )
    txn = Transaction()
    _create_or_set(store, txn, paths.node(name), encode(static))
    _create_or_set(store, txn, paths.node_daemon_state(name), DaemonState.INIT.value)
    _create_or_set(store, txn, paths.node_coordinator_state(name), coordinator_state.value)
    if not store.exists(paths.node_domain_state(name)):
        txn.create(paths.node_domain_state(name), DomainState.READY.value)
    if not store.exists(paths.node_keepalive(name)):
        txn.create(paths.node_keepalive(name), b"")
    add_presence(store, txn, name)
    store.commit(txn)


def add_presence(store: Store, txn: Transaction, name: str) -> None:
    """Replace the node's presence znode by one owned by the current session."""
    if store.exists(paths.node_presence(name)):
        txn.delete(paths.node_presence(name))
    txn.create(paths.node_presence(name), str(store.session_id or ""), ephemeral=True)
