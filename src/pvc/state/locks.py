"""Thin helpers over kazoo's lock recipes (no hand-rolled locking).

Kazoo's own exceptions never leave this module: a lock operation that fails on
ZooKeeper raises :class:`~pvc.state.errors.StateError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kazoo.exceptions import KazooException, LockTimeout, NoAuthError
from kazoo.recipe.lock import Lock

from pvc.state import paths
from pvc.state.errors import AccessDeniedError, StateError
from pvc.state.store import Store

log = logging.getLogger(__name__)


def _failed(what: str, path: str, error: KazooException) -> StateError:
    """The StateError for a failed lock operation (AccessDeniedError when the ACL refused it)."""
    if isinstance(error, NoAuthError):
        return AccessDeniedError(path)
    return StateError(f"{what} {path}: {type(error).__name__}: {error}")


def make_lock(store: Store, path: str, identifier: str) -> Lock:
    """A kazoo Lock at ``path``; ``identifier`` is what contenders() reports for us."""
    return store.client.Lock(path, identifier)


class LockBusy(StateError):
    """A lock was held by another contender for the whole wait."""


@contextmanager
def held(store: Store, path: str, identifier: str, *, timeout: float = 30.0) -> Iterator[Lock]:
    """Hold a lock for the duration of a ``with`` block; LockBusy if another holds it for
    ``timeout`` seconds, StateError if ZooKeeper fails."""
    lock = make_lock(store, path, identifier)
    try:
        acquired = lock.acquire(timeout=timeout)
    except LockTimeout:
        raise LockBusy(f"lock {path} stayed held by another for {timeout:g} s") from None
    except KazooException as error:
        raise _failed("could not acquire lock", path, error) from error
    if not acquired:  # pragma: no cover - acquire raises on timeout
        raise StateError(f"could not acquire lock {path} within {timeout:g} s")
    try:
        yield lock
    finally:
        try:
            lock.release()
        except KazooException as error:  # its node is ephemeral: it goes with the session
            log.warning("could not release lock %s: %s: %s", path, type(error).__name__, error)


class Lease:
    """A non-blocking, exclusive lease on a path (kazoo Lock used without waiting).

    Used for the primary-coordinator role (:func:`primary_lease`) and for task claims: a
    contender tries once; the holder keeps it for as long as its session lives or until
    it releases it.
    """

    def __init__(self, store: Store, path: str, identifier: str) -> None:
        self._store = store
        self.path = path
        self.identifier = identifier
        self._lock = make_lock(store, path, identifier)

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it. Never waits for a holder."""
        try:
            return bool(self._lock.acquire(blocking=False))
        except KazooException as error:
            raise _failed("lease", self.path, error) from error

    def holder(self) -> str | None:
        """Identifier of the current holder (a fresh read), or None."""
        try:
            contenders = self._lock.contenders()
        except KazooException as error:
            raise _failed("lease", self.path, error) from error
        return contenders[0] if contenders else None

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (from kazoo's thread) whenever the lease's contenders change."""
        self._store.ensure(self.path)  # a children watch on a missing znode stops for good
        self._store.client.ChildrenWatch(self.path, lambda _children: callback())

    def clear_orphans(self) -> int:
        """Delete contender znodes of our *current* session that we do not hold.

        A contender left by an interrupted acquire of this session would otherwise look
        like a holder until the session ends. Returns how many were removed.
        """
        if self.held:
            return 0
        session = self._store.session_id
        removed = 0
        for child in self._store.children(self.path):
            path = f"{self.path}/{child}"
            if self._store.ephemeral_owner(path) == session:
                self._store.delete(path)
                removed += 1
        if removed:
            self.forget()
        return removed

    def release(self) -> None:
        """Give the lease up (no-op if not held; best effort when the session is gone)."""
        try:
            self._lock.release()
        except KazooException as error:
            log.debug("lease %s not released: %s", self.path, error)

    def forget(self) -> None:
        """Drop local state after the session was lost (the server already released it)."""
        self._lock = make_lock(self._store, self.path, self.identifier)

    @property
    def held(self) -> bool:
        return bool(self._lock.is_acquired)


def primary_lease(store: Store, identifier: str) -> Lease:
    """The lease whose holder is the primary coordinator."""
    return Lease(store, paths.PRIMARY_LOCK, identifier)
