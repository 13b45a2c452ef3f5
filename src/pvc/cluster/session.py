"""The cluster as the domain library works with it: the store for writes, the cache for reads.

Every domain function takes a :class:`Cluster`. Reads come from the watched cache; a
write goes to ZooKeeper and then :meth:`Cluster.settle` waits until the cache shows it, so
a client that reads right after its own change sees it (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pvc.state import paths
from pvc.state.cache import DEFAULT_ROOTS, SETTLE_TIMEOUT, ClusterCache
from pvc.state.errors import NotConnectedError, StateError
from pvc.state.store import Commit, Store

#: Trees the API serves from memory: the defaults, the tasks and the Ceph mirror.
API_ROOTS = (*DEFAULT_ROOTS, paths.TASKS, paths.CEPH)


@dataclass(frozen=True)
class Cluster:
    """A ZooKeeper session and the watched cache over it."""

    store: Store
    cache: ClusterCache

    def settle(self, commit: Commit, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait (at most ``timeout`` s) until the cache shows ``commit``; see ClusterCache.wait_for."""
        self.cache.wait_for(commit, timeout)


def connect(
    connect_string: str,
    *,
    session_timeout: float,
    credential: tuple[str, str] | None = None,
    roots: Iterable[str] = API_ROOTS,
    give_up_after: float = 30.0,
) -> Cluster:
    """Open a session (authenticated with ``credential``), load the cache of ``roots``.

    NotConnectedError when ZooKeeper cannot be reached within ``give_up_after`` seconds;
    StateError when the cache does not load.
    """
    store = Store(connect_string, timeout=session_timeout, credential=credential)
    if not store.start(attempt_timeout=3.0, give_up_after=give_up_after):
        raise NotConnectedError(f"cannot reach ZooKeeper at {connect_string}")
    cache = ClusterCache(store, tuple(roots))
    cache.start()
    if not cache.wait_ready(give_up_after):
        cache.close()
        store.stop()
        raise StateError("the state cache did not load")
    return Cluster(store, cache)
