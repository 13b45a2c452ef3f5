"""Node records in ZooKeeper: registration, keepalives and a node's three states.

A node lives under ``/nodes/<name>``: the znode itself holds its :class:`NodeStatic`;
beside it are ``daemon_state``, ``coordinator_state`` and ``domain_state`` (plain state
names), ``keepalive`` (JSON) and ``presence`` (ephemeral, owned by the daemon's session).
Readers use :meth:`pvc.state.cache.ClusterCache.node`.

Writes either commit at once (returning their :class:`~pvc.state.store.Commit`) or add
operations to a caller's :class:`~pvc.state.store.Transaction` (the ``add_*`` functions),
so that the node daemon sends a keepalive, a state change and its log lines as one
request.
"""

from __future__ import annotations

from pvc.state import paths
from pvc.state.errors import ConflictError
from pvc.state.records import Keepalive, NodeRecord, NodeStatic, encode
from pvc.state.states import CoordinatorState, DaemonState, DomainState, NodeMode
from pvc.state.store import Commit, Store, Transaction


def register(store: Store, static: NodeStatic) -> Commit:
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
    if store.exists(paths.node_presence(name)):
        txn.delete(paths.node_presence(name))
    txn.create(paths.node_presence(name), str(store.session_id or ""), ephemeral=True)
    return store.commit(txn)


def _create_or_set(store: Store, txn: Transaction, path: str, value: str | bytes) -> None:
    if store.exists(path):
        txn.set(path, value)
    else:
        txn.create(path, value)


def affects_loop(path: str, me: str) -> bool:
    """Whether a change at ``path`` can change what node ``me``'s daemon loop decides: the
    requested primary, the node's own records, any node's presence or daemon state."""
    return (
        path == paths.PRIMARY_NODE
        or path.startswith(paths.node(me) + "/")
        or path.endswith(("/presence", "/daemon_state"))
    )


def keepalive_owner(path: str) -> str | None:
    """The node whose keepalive znode ``path`` is, or None for any other path."""
    prefix, suffix = paths.NODES + "/", "/keepalive"
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    name = path[len(prefix) : -len(suffix)]
    return name if name and "/" not in name and paths.node_keepalive(name) == path else None


# -- operations for a caller's transaction -------------------------------------------------


def add_keepalive(txn: Transaction, name: str, keepalive: Keepalive) -> None:
    """Write the node's keepalive."""
    txn.set(paths.node_keepalive(name), encode(keepalive))


def add_daemon_state(txn: Transaction, name: str, state: DaemonState) -> None:
    """Set the node's daemon state."""
    txn.set(paths.node_daemon_state(name), state.value)


def add_coordinator_state(txn: Transaction, name: str, state: CoordinatorState) -> None:
    """Set the node's coordinator state."""
    txn.set(paths.node_coordinator_state(name), state.value)


def add_departure(txn: Transaction, name: str) -> None:
    """Remove the node's presence (a daemon that stops cleanly)."""
    txn.delete(paths.node_presence(name))


# -- single writes ---------------------------------------------------------------------------


def set_coordinator_state(store: Store, name: str, state: CoordinatorState) -> Commit:
    """Set the node's coordinator state."""
    return store.set(paths.node_coordinator_state(name), state.value)


def request_domain_state(store: Store, name: str, state: DomainState) -> Commit:
    """Ask the node to flush (``flush``) or take VMs again (``unflush``)."""
    return store.set(paths.node_domain_state(name), state.value)


def finish_domain_state(store: Store, name: str, version: int, state: DomainState) -> Commit | None:
    """Move the node's domain state to ``state`` if it is still at data ``version``.

    Returns None (nothing written) when it changed meanwhile, e.g. a ready asked for
    during a flush.
    """
    txn = Transaction()
    txn.check(paths.node_domain_state(name), version)
    txn.set(paths.node_domain_state(name), state.value)
    try:
        return store.commit(txn)
    except ConflictError:
        return None


def mark_dead(store: Store, node: NodeRecord) -> bool:
    """Declare ``node`` dead unless its daemon state or its keepalive changed since ``node``
    was read.

    Returns False when another peer got there first or the node came back (a restart, or
    a keepalive that arrived after the read: the node is alive after all).
    """
    txn = Transaction()
    txn.check(paths.node_daemon_state(node.name), node.daemon_state_version)
    if node.keepalive_version >= 0:
        txn.check(paths.node_keepalive(node.name), node.keepalive_version)
    add_daemon_state(txn, node.name, DaemonState.DEAD)
    try:
        store.commit(txn)
    except ConflictError:
        return False
    return True
