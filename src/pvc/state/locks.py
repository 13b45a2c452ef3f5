"""Thin helpers over kazoo's lock recipes (no hand-rolled locking)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kazoo.recipe.lock import Lock

from pvc.state.errors import StateError
from pvc.state.store import Store


def make_lock(store: Store, path: str, identifier: str) -> Lock:
    """A kazoo Lock at ``path``; ``identifier`` is what contenders() reports for us."""
    return store.client.Lock(path, identifier)


@contextmanager
def held(store: Store, path: str, identifier: str, *, timeout: float = 30.0) -> Iterator[Lock]:
    """Hold a lock for the duration of a ``with`` block; StateError if not acquired in time."""
    lock = make_lock(store, path, identifier)
    if not lock.acquire(timeout=timeout):  # pragma: no cover - acquire raises on timeout
        raise StateError(f"could not acquire lock {path} within {timeout:g} s")
    try:
        yield lock
    finally:
        lock.release()


class Lease:
    """A non-blocking, exclusive lease on a path (kazoo Lock used without waiting).

    Used for the primary-coordinator role: a contender tries once; the holder keeps it
    for as long as its session lives or until it releases it.
    """

    def __init__(self, store: Store, path: str, identifier: str) -> None:
        self._store = store
        self.path = path
        self.identifier = identifier
        self._lock = make_lock(store, path, identifier)

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it. Never waits for a holder."""
        return bool(self._lock.acquire(blocking=False))

    def holder(self) -> str | None:
        """Identifier of the current holder (a fresh read), or None."""
        contenders = self._lock.contenders()
        return contenders[0] if contenders else None

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
            stat = self._store.client.exists(path)
            if stat is not None and stat.ephemeralOwner == session:
                self._store.delete(path)
                removed += 1
        if removed:
            self.forget()
        return removed

    def release(self) -> None:
        """Give the lease up (no-op if not held)."""
        self._lock.release()

    def forget(self) -> None:
        """Drop local state after the session was lost (the server already released it)."""
        self._lock = make_lock(self._store, self.path, self.identifier)

    @property
    def held(self) -> bool:
        return bool(self._lock.is_acquired)
