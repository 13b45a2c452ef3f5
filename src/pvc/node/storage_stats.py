"""The primary's storage refresher: Ceph's state into ZooKeeper every ``stats_interval``.

A primary phase: taking over starts a thread that connects to Ceph and publishes
:func:`pvc.cluster.storage.mirror.collect` through a :class:`Mirror` at once and then on
every interval; relinquishing stops it. Ceph being unreachable is logged (once per
outage) and retried; it never holds up the takeover.
"""

from __future__ import annotations

import logging
import threading
import time

from pvc.cluster.storage.mirror import Mirror, collect
from pvc.config import StorageSection
from pvc.node.phases import Phase
from pvc.state.errors import StateError
from pvc.state.store import Store
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError
from pvc.storage.osd_io import OsdIoRates

log = logging.getLogger("pvc.node")
#: Seconds a relinquish waits for the refresher thread.
STOP_WAIT = 1.0


class StorageStats:
    """Refreshes the Ceph mirror in ZooKeeper from its own thread while started."""

    def __init__(self, store: Store, settings: StorageSection) -> None:
        if settings.ceph_conf is None:
            raise ValueError("the storage refresher needs storage.ceph_conf")
        self.store = store
        self.settings = settings
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshed = threading.Condition()

    def start(self) -> None:
        """Start refreshing (returns at once)."""
        if self._thread is not None:
            return
        # a fresh event per thread: a thread still finishing a call after stop() keeps its own
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="storage-stats", daemon=True
        )
        self._thread.start()

    def stop(self, wait: float = STOP_WAIT) -> None:
        """Stop refreshing; returns within ``wait`` seconds (at once with 0).

        A refresh blocked on an unreachable Ceph must not hold up a relinquish (a cut-off
        primary has to stop acting at once); the thread ends after its current call, and a
        late write of figures is harmless (the next refresher rewrites what differs).
        """
        self._stop.set()
        if self._thread is not None:
            if wait > 0:
                self._thread.join(timeout=wait)
            self._thread = None

    def wait_refreshed(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` refreshes have been published (for tests and tools)."""
        with self._refreshed:
            return self._refreshed.wait_for(lambda: self.refreshes >= count, timeout)

    def _client(self) -> CephClient:
        return CephClient(
            self.settings.ceph_conf,
            name=self.settings.ceph_user,
            keyring=self.settings.ceph_keyring,
            timeout=self.settings.command_timeout,
        )

    def _run(self, stop: threading.Event) -> None:
        client: CephClient | None = None
        mirror = Mirror(self.store)
        io = OsdIoRates()
        failing = False
        while not stop.is_set():
            started = time.monotonic()
            try:
                if client is None:
                    client = self._client()
                changes = mirror.publish(collect(client, io))
                if failing:
                    log.info("storage figures refreshed again")
                failing = False
                log.debug(
                    "storage mirror: %d created, %d updated, %d deleted, %d left to another writer",
                    changes.created,
                    changes.updated,
                    changes.deleted,
                    changes.skipped,
                )
                with self._refreshed:
                    self.refreshes += 1
                    self._refreshed.notify_all()
            except (StorageError, StateError) as error:
                if not failing:
                    log.warning("cannot refresh storage figures: %s", error)
                failing = True
                if isinstance(error, StorageError) and client is not None:
                    client.close()
                    client = None
            stop.wait(max(0.0, self.settings.stats_interval - (time.monotonic() - started)))
        if client is not None:
            client.close()


def storage_stats_phase(store: Store, settings: StorageSection) -> Phase:
    """The primary phase that runs a :class:`StorageStats` refresher."""
    refresher = StorageStats(store, settings)
    return Phase("storage-stats", refresher.start, refresher.stop, abandon=lambda: refresher.stop(wait=0))
