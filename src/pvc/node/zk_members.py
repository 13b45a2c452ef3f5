"""The primary's watch on every ZooKeeper member (off the reconcile loop).

A thread probes each member of ``zookeeper.hosts`` (:func:`pvc.state.members.probe`,
a second at most per member) every ``interval`` seconds while this node acts as primary.
The loop reads the settled results at each keepalive, never waiting for a probe: a member
counts as down after ``failures`` probes in a row without an answer (one slow answer on a
busy machine is not a fault) and as up again at its first answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from pvc.state.members import PROBE_TIMEOUT, MemberHealth, probe

log = logging.getLogger("pvc.node")

#: Probes in a row without an answer before a member counts as down.
FAILURES_TO_REPORT = 2


class MemberWatch:
    """Probes the ensemble's members in its own thread while ``active()`` is true."""

    def __init__(
        self,
        hosts: Sequence[str],
        interval: float,
        active: Callable[[], bool],
        *,
        failures: int = FAILURES_TO_REPORT,
        timeout: float = PROBE_TIMEOUT,
        prober: Callable[[str, float], MemberHealth] = probe,
    ) -> None:
        self.hosts = list(hosts)
        self.interval = interval
        self.active = active
        self.failures = failures
        self.timeout = timeout
        self.prober = prober
        self._lock = threading.Lock()
        self._latest: dict[str, MemberHealth] = {}
        self._misses: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._uncheckable_logged: set[str] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zookeeper-members", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout * 2 + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.active():
                self.probe_once()
            else:
                self.forget()
            self._stop.wait(self.interval)

    def forget(self) -> None:
        """Drop every result (a node that stops acting as primary keeps none for later)."""
        with self._lock:
            self._latest.clear()
            self._misses.clear()

    def probe_once(self) -> None:
        """Probe every member once and record the answers."""
        for host in self.hosts:
            if self._stop.is_set():
                return
            health = self.prober(host, self.timeout)
            if health.answering is None and host not in self._uncheckable_logged:
                self._uncheckable_logged.add(host)
                log.warning("cannot check ZooKeeper member %s: it %s", host, health.detail)
            with self._lock:
                self._misses[host] = self._misses.get(host, 0) + 1 if health.answering is False else 0
                self._latest[host] = health

    def results(self) -> list[MemberHealth]:
        """The settled word on each member probed so far: answering, or down after
        ``failures`` misses in a row; members in between (or unknown) are left out."""
        with self._lock:
            return [
                health
                for host, health in self._latest.items()
                if health.answering or (health.answering is False and self._misses[host] >= self.failures)
            ]
