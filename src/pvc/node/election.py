"""Primary-coordinator election: a pure decision and the role that carries it out.

Exactly one coordinator holds the primary lease (a kazoo lock used without waiting,
see :class:`pvc.state.locks.Lease`). ``/config/primary_node`` names the primary that
administrators want; writing another coordinator's name there moves the role.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from pvc.node.phases import PhaseError, PrimaryPhases
from pvc.state import nodes, settings
from pvc.state.locks import primary_lease
from pvc.state.records import NO_PRIMARY
from pvc.state.states import CoordinatorState, DaemonState
from pvc.state.store import Store, Transaction

log = logging.getLogger(__name__)

#: Seconds to let a named coordinator take an unheld lease before others contend.
HANDOVER_GRACE = 3.0

#: A primary stops acting when its last write confirmed by the ZooKeeper quorum is older
#: than this fraction of the session timeout. The ensemble expires a session one full
#: timeout after its last contact, so the role is given up before anyone else can take it.
PRIMARY_LEASE_FRACTION = 0.75


class Action(StrEnum):
    NONE = "none"
    BE_CLIENT = "be-client"
    BE_SECONDARY = "be-secondary"
    TAKE_OVER = "take-over"
    RELINQUISH = "relinquish"
    RELEASE_LEASE = "release-lease"
    RESET_REQUEST = "reset-request"
    CLEAR_ORPHAN = "clear-orphan"


@dataclass(frozen=True)
class ElectionView:
    """What one node knows when it decides (a snapshot; no I/O)."""

    me: str
    is_coordinator: bool
    daemon_state: str
    shutting_down: bool
    acting: bool
    holding: bool
    holder: str | None
    requested: str
    eligible: frozenset[str]
    handover_waited: float = 0.0
    stale_primaries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    target: str = NO_PRIMARY
    stale_primaries: tuple[str, ...] = ()


def decide(view: ElectionView) -> Decision:
    """The next election step for this node, with the sentence that explains it."""
    if not view.is_coordinator:
        return Decision(Action.BE_CLIENT, "no action: hypervisor node")
    if view.acting:
        if view.shutting_down:
            return Decision(Action.RELINQUISH, "relinquishing primary: daemon is stopping")
        if view.requested == view.me:
            return Decision(Action.NONE, "no action: I am the primary")
        if view.requested in view.eligible:
            return Decision(
                Action.RELINQUISH,
                f"relinquishing primary to {view.requested} as requested",
                view.requested,
            )
        return Decision(
            Action.RESET_REQUEST,
            f"ignoring request to move primary to '{view.requested}': not a running coordinator",
        )
    if view.holding:
        return Decision(Action.RELEASE_LEASE, "releasing a primary lease I no longer act on")
    if view.holder == view.me:
        return Decision(Action.CLEAR_ORPHAN, "primary lease carries my name but I do not hold it")
    if view.holder is not None:
        return Decision(Action.BE_SECONDARY, f"no action: following primary {view.holder}")
    if view.shutting_down or view.daemon_state != DaemonState.RUN:
        return Decision(Action.BE_SECONDARY, f"not contending for primary: daemon is {view.daemon_state}")
    named = view.requested
    if (
        named not in (NO_PRIMARY, "", view.me)
        and named in view.eligible
        and view.handover_waited < HANDOVER_GRACE
    ):
        return Decision(Action.NONE, f"waiting for {named} to take over as requested")
    return Decision(Action.TAKE_OVER, "no primary: contending", stale_primaries=view.stale_primaries)


class PrimaryRole:
    """Carries out election decisions for one node against ZooKeeper."""

    def __init__(self, store: Store, me: str, phases: PrimaryPhases) -> None:
        self.store = store
        self.me = me
        self.phases = phases
        self.lease = primary_lease(store, me)
        self.acting = False
        self._holder: str | None = None
        self._holder_stale = True
        self._handover_started: float | None = None
        self._retry_after = 0.0
        self._own_request_mzxid = -1
        self._acting_lock = threading.Lock()
        self.confirmed_at = 0.0

    # -- inputs ------------------------------------------------------------------------

    def confirm(self, sent_at: float) -> None:
        """A write sent at ``sent_at`` (monotonic) was committed by the quorum."""
        self.confirmed_at = max(self.confirmed_at, sent_at)

    def lease_expired(self, session_timeout: float, now: float | None = None) -> bool:
        """True if acting without a quorum-confirmed write for too long."""
        now = time.monotonic() if now is None else now
        return self.acting and now - self.confirmed_at > session_timeout * PRIMARY_LEASE_FRACTION

    def lease_changed(self) -> None:
        """The lease's contenders changed (from a watch): re-read the holder next time."""
        self._holder_stale = True

    def holder(self) -> str | None:
        if self._holder_stale:
            self._holder_stale = False
            self._holder = self.lease.holder()
        return self._holder

    def view(
        self,
        *,
        is_coordinator: bool,
        daemon_state: str,
        shutting_down: bool,
        requested: str,
        requested_mzxid: int,
        eligible: frozenset[str],
        stale_primaries: tuple[str, ...] = (),
    ) -> ElectionView:
        if self.acting and requested_mzxid < self._own_request_mzxid:
            requested = self.me  # the cache has not caught up with our own takeover write yet
        holder = self.holder() if is_coordinator else None
        now = time.monotonic()
        waiting = holder is None and requested not in (NO_PRIMARY, "", self.me)
        if not waiting:
            self._handover_started = None
        elif self._handover_started is None:
            self._handover_started = now
        return ElectionView(
            me=self.me,
            is_coordinator=is_coordinator,
            daemon_state=daemon_state,
            shutting_down=shutting_down,
            acting=self.acting,
            holding=self.lease.held,
            holder=holder,
            requested=requested,
            eligible=eligible,
            stale_primaries=stale_primaries,
            handover_waited=now - self._handover_started if self._handover_started else 0.0,
        )

    # -- actions -----------------------------------------------------------------------

    def apply(self, decision: Decision, own_state: str) -> str:
        """Carry out a decision; ``own_state`` is our cached coordinator state."""
        action = decision.action
        if action is Action.BE_CLIENT:
            self._set_state(own_state, CoordinatorState.CLIENT)
        elif action is Action.BE_SECONDARY:
            self._set_state(own_state, CoordinatorState.SECONDARY)
        elif action is Action.NONE and self.acting:
            self._set_state(own_state, CoordinatorState.PRIMARY)  # repairs an interrupted takeover
        elif action is Action.TAKE_OVER:
            return self._take_over(decision.stale_primaries)
        elif action is Action.RELINQUISH:
            return self.relinquish(decision.target, decision.reason)
        elif action is Action.RELEASE_LEASE:
            self.lease.release()
            self.lease_changed()
        elif action is Action.CLEAR_ORPHAN:
            self.lease_changed()
            if self.lease.clear_orphans():
                return "removed a primary lease contender left by an interrupted attempt"
            return "waiting for my previous session's primary lease to expire"
        elif action is Action.RESET_REQUEST:
            settings.request_primary(self.store, self.me)
        return decision.reason

    def _set_state(self, current: str, wanted: CoordinatorState) -> None:
        if current != wanted:
            nodes.set_coordinator_state(self.store, self.me, wanted)

    def _take_over(self, stale_primaries: tuple[str, ...]) -> str:
        if time.monotonic() < self._retry_after:
            return "no primary: backing off after a failed takeover"
        if not self.lease.try_acquire():
            self.lease_changed()
            return "no primary: another coordinator won the election"
        self.lease_changed()
        txn = Transaction()
        sent_at = time.monotonic()
        nodes.add_coordinator_state(txn, self.me, CoordinatorState.TAKEOVER)
        settings.add_primary(txn, self.me)
        for node in stale_primaries:  # left behind by a primary whose session ended
            nodes.add_coordinator_state(txn, node, CoordinatorState.SECONDARY)
        commit = self.store.commit(txn)
        self.confirm(sent_at)
        self._own_request_mzxid = commit.zxid  # every write of the transaction has its zxid
        log.info("primary lease acquired; running takeover phases %s", self.phases.names)
        with self._acting_lock:
            try:
                self.phases.take_over()
            except PhaseError as error:
                failed = error
            else:
                failed = None
                self.acting = True
        if failed:
            self._retry_after = time.monotonic() + 5.0
            try:
                nodes.set_coordinator_state(self.store, self.me, CoordinatorState.SECONDARY)
            finally:
                self.lease.release()
                self.lease_changed()
            return f"takeover failed, primary released: {failed}"
        nodes.set_coordinator_state(self.store, self.me, CoordinatorState.PRIMARY)
        return "became primary"

    def relinquish(self, target: str, reason: str) -> str:
        """Give the role up in order: state, phases (reversed), request key, lease."""
        nodes.set_coordinator_state(self.store, self.me, CoordinatorState.RELINQUISH)
        with self._acting_lock:
            failed = self.phases.relinquish() if self.acting else []
            self.acting = False
        txn = Transaction()
        nodes.add_coordinator_state(txn, self.me, CoordinatorState.SECONDARY)
        if target == NO_PRIMARY:
            settings.add_primary(txn, NO_PRIMARY)
        self.store.commit(txn)
        self.lease.release()
        self.lease_changed()
        suffix = f" (phases failed: {', '.join(failed)})" if failed else ""
        return reason.replace("relinquishing", "relinquished") + suffix

    def demote_locally(self, why: str) -> str | None:
        """Stop acting as primary without touching ZooKeeper (safe from any thread)."""
        with self._acting_lock:
            if not self.acting:
                return None
            failed = self.phases.relinquish(at_once=True)
            self.acting = False
        suffix = f" (phases failed: {', '.join(failed)})" if failed else ""
        return f"stopped acting as primary: {why}{suffix}"

    def session_lost(self) -> None:
        """The session expired: the server already dropped our lease."""
        self.lease.forget()
        self.lease_changed()
