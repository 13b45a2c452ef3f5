"""What the node daemon's reconcilers share: a thread that runs passes when woken (and
every so often regardless), and the faults one reconciler keeps raised for its node."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping

from pvc.cluster.faults.actions import clear, report
from pvc.cluster.session import Cluster
from pvc.state.errors import StateError

log = logging.getLogger(__name__)

#: Seconds a pass waits after a wake-up for the rest of a burst of changes.
DEBOUNCE = 0.05


class PassThread:
    """Runs ``run_pass`` in a thread of its own: at once on :meth:`start`, after every
    :meth:`wake` (a burst of wake-ups is one pass) and every ``interval`` seconds."""

    def __init__(self, name: str, run_pass: Callable[[], object], interval: float) -> None:
        self.name = name
        self.run_pass = run_pass
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (again, after :meth:`stop`: a primary phase comes and goes)."""
        self._stop.clear()
        self._wake.set()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    @property
    def woken(self) -> bool:
        """Whether a pass is due (for tests)."""
        return self._wake.is_set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            if self._stop.is_set():
                return
            time.sleep(DEBOUNCE)
            self._wake.clear()
            try:
                self.run_pass()
            except Exception:  # never let one bad pass end the reconciler
                log.exception("%s: a pass failed", self.name)


class NodeFaults:
    """The faults of kind ``kind`` one reconciler raises for ``node``, one per subject
    (``<node>:<subject>``): :meth:`publish` raises or refreshes the current problems and
    clears those that went away."""

    def __init__(self, cluster: Cluster, node: str, kind: str, delta: int) -> None:
        self.cluster, self.node, self.kind, self.delta = cluster, node, kind, delta
        self._raised: set[Hashable] = set()

    def publish(self, problems: Mapping[Hashable, str]) -> None:
        try:
            maintenance = self.cluster.cache.cluster_config().maintenance
            for subject, message in sorted(problems.items(), key=lambda item: str(item[0])):
                sentence = report(
                    self.cluster,
                    self.kind,
                    f"{self.node}:{subject}",
                    self.delta,
                    message,
                    maintenance=maintenance,
                )
                if sentence:
                    log.warning("%s", sentence)
            for subject in sorted(self._raised - set(problems), key=str):
                sentence = clear(self.cluster, self.kind, f"{self.node}:{subject}")
                if sentence:
                    log.info("%s", sentence)
        except StateError as error:
            log.error("cannot record %s faults: %s", self.kind, error)
            return
        self._raised = set(problems)
