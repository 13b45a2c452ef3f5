"""Fencing records in ZooKeeper: a node's BMC, its fences, and the state changes they make.

A fence moves a node through these writes, each a compare-and-set so that a node that
comes back, or a second fencer, can never interleave with it:

1. :func:`begin_fence` — the commit point. Only while the node is still ``dead`` (at the
   daemon-state version the fencer saw) its domain state becomes ``fence-flush``: from
   then on the node starts no VM, and it can no longer take itself back to ``run``
   (:func:`reclaim_run` checks the domain state).
2. :func:`record_fence` — progress and outcome (``fenced`` or ``failed``); on success the
   daemon state becomes ``fenced``.
3. :func:`end_fence_flush` — recovery done (``flushed``), or a failed fence whose VMs stay
   (the domain state the node had before).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pvc.state import paths
from pvc.state.errors import ConflictError
from pvc.state.records import NodeRecord, _Record, decode_text, encode
from pvc.state.states import DaemonState, DomainState
from pvc.state.store import Store, Transaction


@dataclass(frozen=True)
class IpmiRecord(_Record):
    """Where and how peers reach a node's BMC."""

    host: str
    user: str
    password: str = field(repr=False)
    port: int = 623


class FenceState:
    """Where a fence stands (the ``state`` of a :class:`FenceRecord`)."""

    FENCING = "fencing"
    FENCED = "fenced"
    FAILED = "failed"


@dataclass(frozen=True)
class FenceRecord(_Record):
    """One fence of a node, as its fencer records it."""

    state: str
    fencer: str
    #: Wall-clock time the fence began (shown only; nothing is timed on it).
    started: float
    #: The node's domain state before the fence (restored when a failed fence leaves its VMs).
    previous_domain_state: str = DomainState.READY
    #: What was done, one line per step (IPMI commands and their answers).
    steps: list[str] = field(default_factory=list)
    error: str = ""
    #: VMs recovered elsewhere, and VMs that fit nowhere (stopped).
    recovered: list[str] = field(default_factory=list)
    stranded: list[str] = field(default_factory=list)
    #: The fence and what followed it (recovery, power on) are over.
    done: bool = False
    #: Which try this is at fencing one death of the node (the version of its ``dead``
    #: daemon state), and when a failed try may be repeated (wall clock: a coordinator
    #: whose clock is off only retries earlier or later).
    attempt: int = 1
    dead_version: int = -1
    retry_at: float = 0.0

    def retry_pending(self, node: NodeRecord, now: float) -> bool:
        """Whether this failed fence of ``node``'s present death waits for its retry time."""
        return (
            self.state == FenceState.FAILED
            and self.done
            and self.dead_version == node.daemon_state_version
            and now < self.retry_at
        )

    def with_step(self, step: str) -> FenceRecord:
        return replace(self, steps=[*self.steps, step])


def record_ipmi(store: Store, name: str, ipmi: IpmiRecord | None) -> None:
    """Record (or, with None, remove) how peers reach node ``name``'s BMC."""
    path = paths.node_ipmi(name)
    if ipmi is None:
        store.delete(path)
    else:
        store.set(path, encode(ipmi))


def read_ipmi(store: Store, name: str) -> IpmiRecord | None:
    """How to reach node ``name``'s BMC, or None when it recorded none (a fresh read)."""
    return IpmiRecord.from_bytes(store.get(paths.node_ipmi(name)))


def read_fence(store: Store, name: str) -> FenceRecord | None:
    """Node ``name``'s last fence record, or None (a fresh read)."""
    return FenceRecord.from_bytes(store.get(paths.node_fence(name)))


def begin_fence(
    store: Store,
    node: NodeRecord,
    domain_version: int,
    fencer: str,
    now: float,
    previous: FenceRecord | None = None,
) -> FenceRecord | None:
    """Commit to fencing ``node``: its domain state becomes ``fence-flush`` if it is still
    ``dead`` at the versions read. Returns the new fence record, or None when the node
    came back (or its states changed) meanwhile. ``previous`` (the node's last record)
    counts the tries at one death."""
    if node.daemon_state != DaemonState.DEAD:
        return None
    again = (
        previous is not None
        and previous.state == FenceState.FAILED
        and previous.dead_version == node.daemon_state_version
    )
    record = FenceRecord(
        state=FenceState.FENCING,
        fencer=fencer,
        started=now,
        previous_domain_state=node.domain_state,
        attempt=previous.attempt + 1 if again and previous is not None else 1,
        dead_version=node.daemon_state_version,
    )
    txn = Transaction()
    txn.check(paths.node_daemon_state(node.name), node.daemon_state_version)
    txn.check(paths.node_domain_state(node.name), domain_version)
    txn.set(paths.node_domain_state(node.name), DomainState.FENCE_FLUSH.value)
    _put_fence(store, txn, node.name, record)
    try:
        store.commit(txn)
    except ConflictError:
        return None
    return record


def record_fence(store: Store, name: str, record: FenceRecord, *, outcome: bool = False) -> None:
    """Write the fence's progress. With ``outcome`` (the write right after the power-off
    check), a ``fenced`` record also sets the daemon state ``fenced``; later writes leave
    it to the node, which may already be starting again."""
    txn = Transaction()
    _put_fence(store, txn, name, record)
    if outcome and record.state == FenceState.FENCED:
        txn.set(paths.node_daemon_state(name), DaemonState.FENCED.value)
    store.commit(txn)


def end_fence_flush(store: Store, name: str, state: DomainState) -> bool:
    """Leave ``fence-flush`` for ``state``; False if the domain state is no longer
    ``fence-flush`` (an operator or another fencer moved it)."""
    path = paths.node_domain_state(name)
    data, version = store.get_versioned(path)
    if decode_text(data) != DomainState.FENCE_FLUSH:
        return False
    txn = Transaction()
    txn.check(path, version)
    txn.set(path, state.value)
    try:
        store.commit(txn)
    except ConflictError:
        return False
    return True


def add_reclaim_run(txn: Transaction, node: NodeRecord, domain_version: int) -> None:
    """Take a node declared ``dead`` back to ``run`` (it is alive after all), provided no
    fence has begun: the daemon and domain states must still be at the versions read."""
    txn.check(paths.node_daemon_state(node.name), node.daemon_state_version)
    txn.check(paths.node_domain_state(node.name), domain_version)
    txn.set(paths.node_daemon_state(node.name), DaemonState.RUN.value)


def _put_fence(store: Store, txn: Transaction, name: str, record: FenceRecord) -> None:
    if store.exists(paths.node_fence(name)):
        txn.set(paths.node_fence(name), encode(record))
    else:
        txn.create(paths.node_fence(name), encode(record))
