"""The primary's local lease, and the guard process that enforces it.

A primary holds its role for as long as ZooKeeper confirms its writes: its daemon steps
down by itself ``PRIMARY_LEASE_FRACTION`` of the session timeout after the last
confirmed write (:mod:`pvc.node.election`), before its session can expire and another
coordinator can take over. A daemon that is frozen (stopped, swapped out, stuck in the
kernel) cannot step down, and its floating addresses, API, gateways, DHCP and DNS
servers would go on answering beside the new primary's.

So at takeover the daemon writes a *local lease* — a file holding the monotonic time
(the machine's ``CLOCK_MONOTONIC``, shared by all its processes) until which it may act
— renews it with every confirmed write, and starts a *guard*: a separate small process
that is not frozen with the daemon. When the lease runs out, the guard removes every
primary-only service and address (the same clean-up a daemon does after a crash) and
deletes the lease file; a daemon that wakes up finds its lease revoked and steps down.
Normal relinquish deletes the file, and the guard exits.

The new primary can only take over once the old one's ZooKeeper session has expired —
a full session timeout after its last write, later than the lease — so the addresses are
never on two nodes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

from pvc import processes
from pvc.config import NodeConfig, load_config
from pvc.errors import ConfigError
from pvc.node.phases import Phase
from pvc.processes import ProcessRef

log = logging.getLogger("pvc.node.guard")

#: How often the guard reads the lease (seconds).
GUARD_PERIOD = 0.05
LEASE_FILE = "primary.lease"


def lease_path(config: NodeConfig) -> Path:
    return config.paths.state_dir / LEASE_FILE


def revoked_path(lease: Path) -> Path:
    """The guard's mark that it revoked the lease (written before it removes the lease)."""
    return lease.with_suffix(".revoked")


def write_lease(path: Path, expires: float) -> None:
    """Write the lease's expiry (monotonic seconds) atomically."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"expires": expires, "daemon": os.getpid()}))
    os.replace(temporary, path)


def read_lease(path: Path) -> float | None:
    """The lease's expiry, or None when there is no lease (or it cannot be read)."""
    try:
        return float(json.loads(path.read_text())["expires"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class LocalLease:
    """The daemon's side: a primary phase that writes the lease and starts the guard."""

    def __init__(self, config: NodeConfig, duration: float) -> None:
        self.config = config
        self.path = lease_path(config)
        self.duration = duration
        self.guard: ProcessRef | None = None
        self._active = False
        # begin/end run in the election's thread, renew in the keepalive's: a renew racing an
        # end must not write the lease back or start a guard after it was stopped
        self._lock = threading.Lock()

    def phase(self) -> Phase:
        """The first takeover phase (and so the last to be relinquished)."""
        return Phase("lease-guard", self.begin, self.end)

    def begin(self) -> None:
        with self._lock:
            self._begin()

    def _begin(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        revoked_path(self.path).unlink(missing_ok=True)
        write_lease(self.path, time.monotonic() + self.duration)
        self._active = True
        self._start_guard()

    def _start_guard(self) -> None:
        self.guard = processes.spawn(
            "primary-guard",
            [sys.executable, "-m", "pvc.node.primary_guard", str(self.path)],
            self.log_path,
            env=dict(os.environ),
        )

    @property
    def log_path(self) -> Path:
        return self.config.paths.log_dir / "primary-guard.log"

    def renew(self, sent_at: float) -> bool:
        """Extend the lease from a write sent at ``sent_at`` that ZooKeeper confirmed.
        False when the guard revoked it meanwhile (the daemon must step down)."""
        with self._lock:
            return self._renew(sent_at)

    def _renew(self, sent_at: float) -> bool:
        if not self._active:
            return True
        if not self.path.exists():
            return False
        write_lease(self.path, sent_at + self.duration)
        if revoked_path(self.path).exists():  # the guard revoked it as this was written
            self.path.unlink(missing_ok=True)
            return False
        if self.guard is None or not processes.is_alive(self.guard):
            log.error("the primary guard is not running (see %s): starting it again", self.log_path)
            self._start_guard()
        return True

    def end(self) -> None:
        with self._lock:
            self._end()

    def _end(self) -> None:
        self._active = False
        self.path.unlink(missing_ok=True)
        if self.guard is not None:
            processes.terminate([self.guard], timeout=5.0)
            self.guard = None


def clean_up(config: NodeConfig) -> list[str]:
    """Remove every primary-only service and address of this node, with no daemon state
    to go by (what a daemon does at start after a crash, or the guard when the lease ran
    out); the phases that failed. The shared addresses go first: a service that is slow to
    stop must never keep them on two nodes at once."""
    from pvc.node.net_manager import NetManager
    from pvc.node.primary_services import FLOATING_PHASE, primary_phases

    manager = NetManager(config, None) if config.networks.client_networks else None
    if manager is not None:
        manager.drop_gateways()
    failed = primary_phases(config, None).relinquish(first=(FLOATING_PHASE,), at_once=True)
    if manager is not None:
        manager.serve(False)
    return failed


def guard(path: Path, config: NodeConfig, period: float = GUARD_PERIOD) -> str:
    """Watch the lease at ``path`` until it is given up (returns "released") or runs out
    (cleans up, returns "expired")."""
    while True:
        expires = read_lease(path)
        if expires is None:
            return "released"
        late = time.monotonic() - expires
        if late > 0:
            log.critical("primary lease ran out %.2f s ago: removing primary services and addresses", late)
            revoked_path(path).touch()
            path.unlink(missing_ok=True)
            failed = clean_up(config)
            if failed:
                log.error("could not remove: %s", ", ".join(failed))
            return "expired"
        time.sleep(min(period, -late))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config()
    except ConfigError as error:
        log.error("%s", error)
        return 2
    outcome = guard(Path(sys.argv[1]), config)
    log.info("primary lease %s; guard exits", outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
