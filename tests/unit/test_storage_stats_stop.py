"""The storage refresher stops within its wait when relinquished, and without waiting when
the primary role is abandoned (its thread may be blocked on an unreachable Ceph)."""

from __future__ import annotations

import threading
import time

from pvc.config import StorageSection
from pvc.node import storage_stats
from pvc.node.storage_stats import StorageStats, storage_stats_phase


def blocked_refresher(monkeypatch) -> tuple[StorageStats, threading.Event]:
    release = threading.Event()
    monkeypatch.setattr(StorageStats, "_run", lambda self, stop: release.wait(30))
    return StorageStats(None, StorageSection(ceph_conf="/etc/ceph/ceph.conf")), release


def test_relinquish_waits_for_the_thread_at_most_its_stop_wait(monkeypatch):
    refresher, release = blocked_refresher(monkeypatch)
    refresher.start()
    started = time.monotonic()
    refresher.stop(wait=0.3)
    assert 0.25 <= time.monotonic() - started < 2.0
    release.set()


def test_abandoning_the_phase_does_not_wait(monkeypatch):
    refresher, release = blocked_refresher(monkeypatch)
    monkeypatch.setattr(storage_stats, "StorageStats", lambda store, settings: refresher)
    phase = storage_stats_phase(None, refresher.settings)
    phase.takeover()
    started = time.monotonic()
    phase.give_up(at_once=True)
    assert time.monotonic() - started < 0.1
    assert refresher._stop.is_set()
    release.set()
