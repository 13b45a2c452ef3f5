"""Self-fencing: a node cut off from ZooKeeper stops its own VMs before its peers may
start them elsewhere, and (with a hardware watchdog) a hung node is reset.

Its peers may fence a silent node and start its VMs ``fence_after`` seconds after they
last saw its keepalive (declared dead, then the saving throws). A node that has had no
write confirmed by the quorum for ``suicide_after`` seconds, and cannot open a TCP
connection to most of the ensemble's members, is on the wrong side of a partition: it
powers off every VM it runs, drops its primary role and stops its daemon. The
configuration guarantees ``suicide_after`` + the time allowed to stop the VMs comes
before ``fence_after`` (see :mod:`pvc.config`).

The member check keeps a slow quorum from stopping every VM of the cluster: while the
ensemble elects a leader (or an fsync stalls) writes wait everywhere, but the members
still accept connections, and no peer can declare anyone dead meanwhile either.

A node whose own writes stop while ZooKeeper goes on confirming its peers' (its daemon
loop is stuck) is declared dead and fenced like any silent node. Where a failed fence
still recovers its VMs (``failed_fence: migrate``), it must not be running them by then:
with ``stall_after`` set, it fences itself once that long without a confirmed write of
its own while its peers' keepalives have been advancing for ``stall_evidence`` seconds.

This runs in its own thread, so a loop blocked in a ZooKeeper call does not hold it up.
A daemon that is frozen as a whole cannot fence itself: the hardware watchdog covers
that case. It is petted here only while the node is not cut off, so a frozen daemon, a
hung kernel or a self-fence lets it reset the machine.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pvc.state.members import split_host

log = logging.getLogger("pvc.node.self_fence")

#: How often the thread looks (seconds).
PERIOD = 0.2
#: Seconds a member gets to accept a TCP connection.
CONNECT_TIMEOUT = 0.5
#: Linux watchdog ioctl: set the timeout in seconds (``_IOWR('W', 6, int)``).
WDIOC_SETTIMEOUT = 0xC0045706


def tcp_reachable(host: str, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether ``host`` (``address[:port]`` of ``zookeeper.hosts``) accepts a TCP connection."""
    address, port = split_host(host)
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


class Watchdog:
    """The hardware watchdog (``/dev/watchdog``): armed at open, reset by :meth:`pet`.

    :meth:`disarm` writes the magic character before closing, so a clean stop does not
    reset the machine; a self-fence closes without it.
    """

    def __init__(self, path: Path, timeout: int) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY)
        try:
            fcntl.ioctl(self._fd, WDIOC_SETTIMEOUT, struct.pack("i", timeout))
            self.timeout: int | None = timeout
        except OSError as error:
            log.warning("watchdog %s: cannot set a %d s timeout (%s); its own applies", path, timeout, error)
            self.timeout = None

    @classmethod
    def open(cls, path: Path | None, timeout: int) -> Watchdog | None:
        """The armed watchdog, or None (logged) when there is none or it cannot be opened."""
        if path is None:
            log.info("no hardware watchdog configured (fencing.watchdog): a hung node relies on its fence")
            return None
        try:
            return cls(path, timeout)
        except OSError as error:
            log.warning(
                "hardware watchdog %s unavailable (%s): a hung node relies on being fenced over IPMI",
                path,
                error.strerror or error,
            )
            return None

    def pet(self) -> None:
        os.write(self._fd, b"\0")

    def disarm(self) -> None:
        """Close with the magic character: the watchdog stops (a clean daemon stop)."""
        try:
            os.write(self._fd, b"V")
        finally:
            os.close(self._fd)

    def abandon(self) -> None:
        """Close without disarming: the machine resets when the timeout runs out."""
        os.close(self._fd)


class SelfFence:
    """Watches the node's last confirmed ZooKeeper write; fences the node when cut off."""

    def __init__(
        self,
        suicide_after: float,
        members: Sequence[str],
        *,
        confirmed_at: Callable[[], float],
        fence: Callable[[str], None],
        watchdog: Watchdog | None = None,
        reachable: Callable[[str], bool] = tcp_reachable,
        monotonic: Callable[[], float] = time.monotonic,
        stall_after: float | None = None,
        stall_evidence: float = 2.0,
        peers_progress_since: Callable[[float], float | None] = lambda since: None,
    ) -> None:
        self.suicide_after = suicide_after
        self.stall_after = stall_after
        self.stall_evidence = stall_evidence
        self.peers_progress_since = peers_progress_since
        self.members = list(members)
        self.confirmed_at = confirmed_at
        self.fence = fence
        self.watchdog = watchdog
        self.reachable = reachable
        self.monotonic = monotonic
        self.fenced = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.members)), thread_name_prefix="zk-reach")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="self-fence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; a clean stop disarms the watchdog."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        if self.watchdog is not None and not self.fenced:
            self.watchdog.disarm()
        self._pool.shutdown(wait=False)

    def _run(self) -> None:
        while not self._stop.wait(PERIOD):
            try:
                self.check()
            except Exception:  # the check must survive anything
                log.exception("self-fence check failed")

    def reachable_members(self) -> int:
        """How many ensemble members accept a TCP connection now (probed in parallel)."""
        return sum(self._pool.map(self.reachable, self.members))

    def cut_off(self) -> str | None:
        """Why this node counts as cut off from the quorum (or stuck), or None."""
        now = self.monotonic()
        confirmed = self.confirmed_at()
        silent = now - confirmed
        if self.stall_after is not None and silent > self.stall_after:
            first = self.peers_progress_since(confirmed)
            if first is not None and now - first > self.stall_evidence:
                return (
                    f"no write of this node confirmed for {silent:.1f} s while ZooKeeper confirms "
                    f"its peers' (for {now - first:.1f} s): its daemon is stuck"
                )
        if self.suicide_after <= 0:
            return None
        if silent <= self.suicide_after:
            return None
        reached = self.reachable_members()
        if reached * 2 > len(self.members):
            return None  # the ensemble is slow, not out of reach: peers cannot act either
        return (
            f"no write confirmed by ZooKeeper for {silent:.1f} s and only {reached} of "
            f"{len(self.members)} members reachable"
        )

    def check(self) -> bool:
        """One look: pet the watchdog, or fence this node. True once it fenced itself."""
        if self.fenced:
            return True
        why = self.cut_off()
        if why is None:
            if self.watchdog is not None:
                self.watchdog.pet()
            return False
        self.fenced = True
        log.critical("self-fencing: %s; powering off every VM here before peers may start them", why)
        if self.watchdog is not None:
            self.watchdog.abandon()  # the machine resets once the VMs had their chance to stop
        self.fence(why)
        return True
