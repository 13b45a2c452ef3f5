"""Fencing dead peers over IPMI and recovering their VMs (run by every coordinator).

A peer the loop declared ``dead`` (see :mod:`pvc.node.peers`) gets ``fencing.saving_throws``
more keepalive intervals to come back. Then one coordinator, the one that takes the
peer's fence lease (a kazoo lock), fences it:

1. commit (:func:`pvc.state.fencing.begin_fence`): the peer's domain state becomes
   ``fence-flush`` only if it is still ``dead`` — a keepalive that arrives first wins;
2. ``power off`` over IPMI, wait ``power_off_wait``, read the power state: ``off`` means
   fenced (daemon state ``fenced``), anything else (no credentials, no answer, still on)
   means the fence failed (it stays ``dead``, with a fault);
3. the action configured for that outcome (``fencing.actions``): ``migrate`` recovers
   its VMs on other nodes (:mod:`pvc.cluster.node.recovery`);
4. a fenced peer is powered on again (``power on``, wait, read the state), to rejoin
   as ``flushed``: it starts no VM while its domain state is still ``fence-flush``;
5. the domain state leaves ``fence-flush``: ``flushed`` after a recovery, else (``none``)
   the one it had, its VMs left where they are.

Every step is written to the peer's fence record (``pvc node info`` shows it). A fencer
that dies midway loses its lease with its session; the next coordinator resumes from
the record (power on comes before the end of ``fence-flush`` so that a resumed fence
still powers the node on). A failed fence is tried again after a back-off kept in the
record, so that every coordinator honours it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from pvc.cluster.faults.actions import clear, report
from pvc.cluster.node.recovery import recover
from pvc.cluster.session import Cluster
from pvc.config import NodeConfig
from pvc.node.background import PassThread
from pvc.power import ipmi
from pvc.power.ipmi import IpmiError, IpmiTarget, PowerState
from pvc.state import paths
from pvc.state.errors import StateError
from pvc.state.fencing import (
    FenceRecord,
    FenceState,
    begin_fence,
    end_fence_flush,
    read_fence,
    read_ipmi,
    record_fence,
)
from pvc.state.locks import Lease
from pvc.state.states import DaemonState, DomainState
from pvc.state.vms import VmRecord

log = logging.getLogger("pvc.node.fencing")

#: Seconds before a failed fence is tried again; doubled each time, up to the maximum.
RETRY_FIRST = 30.0
RETRY_MAX = 600.0
#: Health deltas of the faults a fence raises.
DELTA_FENCE_FAILED = 50
DELTA_VM_STRANDED = 25
FENCE_FAILED = "fence_failed"
VMS_STRANDED = "vms_not_recovered"


class Power(Protocol):
    """What the fencer needs of a BMC (see :mod:`pvc.power.ipmi`)."""

    def off(self, target: IpmiTarget) -> None: ...
    def on(self, target: IpmiTarget) -> None: ...
    def status(self, target: IpmiTarget) -> PowerState: ...


class IpmiPower:
    """:class:`Power` through ipmitool, each call bounded by ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def off(self, target: IpmiTarget) -> None:
        ipmi.power_off(target, timeout=self.timeout)

    def on(self, target: IpmiTarget) -> None:
        ipmi.power_on(target, timeout=self.timeout)

    def status(self, target: IpmiTarget) -> PowerState:
        return ipmi.power_status(target, timeout=self.timeout)


class Fencer:
    """Fences this coordinator's dead peers (one worker thread per fence)."""

    def __init__(
        self,
        config: NodeConfig,
        cluster: Cluster,
        *,
        break_locks: Callable[[VmRecord, str | None], str | None],
        active: Callable[[], bool],
        osds_down: Callable[[str], str | None] = lambda node: None,
        power: Power | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.me = config.node.name
        self.cluster = cluster
        self.fencing = config.fencing
        self.default_selector = config.hypervisor.target_selector
        self.saving_window = config.fencing.saving_throws * config.timers.keepalive_interval
        self.break_locks = break_locks
        self.osds_down = osds_down
        self.active = active
        self.power = power or IpmiPower(config.fencing.ipmi_timeout)
        self._monotonic, self._wall, self._sleep = monotonic, wall, sleep
        self._thread = PassThread("fencer", self.run_pass, config.timers.keepalive_interval)
        self._lock = threading.Lock()
        self._dead_since: dict[str, float] = {}
        self._working: dict[str, threading.Thread] = {}
        self._timer: threading.Timer | None = None
        self._timer_due = 0.0
        #: Fences finished by this node (for tests and the bench): name -> last record.
        self.finished: dict[str, FenceRecord] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def wake(self) -> None:
        self._thread.wake()

    def on_change(self, path: str) -> None:
        """Cache listener: a peer's daemon or domain state changed."""
        if path.endswith(("/daemon_state", "/domain_state")) or path == paths.MAINTENANCE:
            self.wake()

    # -- the pass ---------------------------------------------------------------------------

    def run_pass(self) -> list[str]:
        """Start a fence for every peer whose saving throws ran out; returns their names."""
        if not self.active():
            return []
        cache = self.cluster.cache
        if cache.cluster_config().maintenance:
            self._dead_since.clear()  # nodes may be rebooted freely; count afresh after
            return []
        now = self._monotonic()
        started = []
        next_due: float | None = None
        for node in cache.nodes():
            name = node.name
            if name == self.me or self._busy(name):
                continue
            resume = node.domain_state == DomainState.FENCE_FLUSH
            if not resume and node.daemon_state != DaemonState.DEAD:
                self._dead_since.pop(name, None)
                continue
            since = self._dead_since.setdefault(name, now)
            due = since + self.saving_window
            last = None if resume else FenceRecord.from_bytes(cache.data(paths.node_fence(name)))
            wall = self._wall()
            if last is not None and last.retry_pending(node, wall):
                due = max(due, now + last.retry_at - wall)
            if not resume and now < due:
                next_due = due if next_due is None else min(next_due, due)
                continue
            lease = Lease(self.cluster.store, paths.fence_lock(name), self.me)
            if not lease.try_acquire():
                continue  # another coordinator fences it
            worker = threading.Thread(
                target=self._fence, args=(name, lease), name=f"fence-{name}", daemon=True
            )
            with self._lock:
                self._working[name] = worker
            worker.start()
            started.append(name)
        if next_due is not None:
            self._wake_in(next_due - now)
        return started

    def _wake_in(self, seconds: float) -> None:
        """Run a pass when a saving window ends, not at the next periodic pass (one timer:
        a later one replaces an earlier only when it is due sooner)."""
        due = time.monotonic() + max(0.0, seconds)
        with self._lock:
            if self._timer is not None and self._timer.is_alive() and self._timer_due <= due:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(0.0, seconds) + 0.01, self.wake)
            self._timer.daemon = True
            self._timer_due = due
            self._timer.start()

    def _busy(self, name: str) -> bool:
        with self._lock:
            return name in self._working

    def wait_idle(self, timeout: float) -> bool:
        """Wait for the fences under way to finish (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                workers = list(self._working.values())
            if not workers:
                return True
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return False

    # -- one fence ------------------------------------------------------------------------------

    def _fence(self, name: str, lease: Lease) -> None:
        try:
            record = self._fence_held(name)
            if record is not None:
                self.finished[name] = record
        except StateError as error:
            log.error("fencing node %s stopped: ZooKeeper: %s; the next fencer resumes it", name, error)
        except Exception:  # a worker must never die silently
            log.exception("fencing node %s failed unexpectedly", name)
        finally:
            lease.release()
            with self._lock:
                self._working.pop(name, None)
            self.wake()

    def _fence_held(self, name: str) -> FenceRecord | None:
        """Fence ``name`` (holding its lease) from wherever its record says it stands."""
        store = self.cluster.store
        record = read_fence(store, name)
        domain_state, domain_version = self.cluster.cache.domain_state(name)
        if domain_state != DomainState.FENCE_FLUSH or record is None:
            previous = record
            node = self.cluster.cache.node(name)
            if node is None:
                return None
            if previous is not None and previous.retry_pending(node, self._wall()):
                return None  # seen from a cache that was behind: not due yet
            record = begin_fence(store, node, domain_version, self.me, self._wall(), previous)
            if record is None:
                log.info("node %s is no longer dead (or is fenced by another node): no fence", name)
                return None
            log.warning("fencing node %s: no keepalive; it did not come back in its saving throws", name)
        elif record.done:
            return None  # finished meanwhile (this node's cache was behind)
        elif record.state != FenceState.FENCING:
            log.info("resuming the recovery of node %s (fence %s by %s)", name, record.state, record.fencer)
        if record.state == FenceState.FENCING:
            # The node's OSDs are marked down from here on (if it is alive they come back up):
            # Ceph settles while the BMC is asked. In a thread of its own: with a monitor of
            # the node gone, the monitors may take seconds to answer, and the fence waits
            # for nothing of Ceph.
            threading.Thread(
                target=self._mark_osds_down, args=(name,), name=f"osds-down-{name}", daemon=True
            ).start()
            record = self._power_off(name, replace(record, fencer=self.me))
            record_fence(store, name, record, outcome=True)
        fenced = record.state == FenceState.FENCED
        action = self.fencing.actions.successful_fence if fenced else self.fencing.actions.failed_fence
        if fenced:
            log.warning("node %s fenced: %s", name, "; ".join(record.steps))
        else:
            record = self._fence_failed(name, record, action)
        if action == "migrate":
            record = self._recover(name, record)
        if fenced:
            record = self._power_on(name, record)
            record_fence(store, name, record)
        after = DomainState.FLUSHED if action == "migrate" else DomainState(record.previous_domain_state)
        end_fence_flush(store, name, after)
        record = replace(record, done=True)
        record_fence(store, name, record)
        return record

    def _mark_osds_down(self, name: str) -> None:
        done = self.osds_down(name)
        if done:
            log.info("fence of node %s: %s", name, done)

    def _target(self, name: str) -> IpmiTarget | str:
        """How to reach ``name``'s BMC, or why it cannot be reached."""
        ipmi = read_ipmi(self.cluster.store, name)
        if ipmi is None:
            return f"node {name} recorded no IPMI host, user and password"
        try:
            return IpmiTarget(host=ipmi.host, user=ipmi.user, password=ipmi.password, port=ipmi.port)
        except (TypeError, ValueError) as error:
            return f"node {name} recorded unusable IPMI settings: {error}"

    def _power_off(self, name: str, record: FenceRecord) -> FenceRecord:
        """Power ``name`` off and check it is off: the record as ``fenced`` or ``failed``."""
        target = self._target(name)
        if isinstance(target, str):
            return replace(record, state=FenceState.FAILED, error=target)
        try:
            self.power.off(target)
            record = record.with_step(f"power off sent to {target}")
        except IpmiError as error:
            record = record.with_step(f"power off to {target}: {error}")
        self._sleep(self.fencing.power_off_wait)
        try:
            state = self.power.status(target)
        except IpmiError as error:
            record = record.with_step(f"power state: {error}")
            return replace(record, state=FenceState.FAILED, error=str(error))
        record = record.with_step(f"power state: {state}")
        if state != PowerState.OFF:
            return replace(record, state=FenceState.FAILED, error=f"node {name} is still powered {state}")
        return replace(record, state=FenceState.FENCED, error="")

    def _power_on(self, name: str, record: FenceRecord) -> FenceRecord:
        """Power a fenced node on again so that it can rejoin (a failure is only logged)."""
        target = self._target(name)
        if isinstance(target, str):
            return record.with_step(f"power on: {target}")
        try:
            self.power.on(target)
            self._sleep(self.fencing.power_on_wait)
            state = self.power.status(target)
        except IpmiError as error:
            log.error("node %s was fenced but could not be powered on: %s", name, error)
            return record.with_step(f"power on: {error}")
        if state != PowerState.ON:
            log.error("node %s was fenced but is still powered %s after power on", name, state)
        return record.with_step(f"power on sent; power state: {state}")

    def _fence_failed(self, name: str, record: FenceRecord, action: str) -> FenceRecord:
        """Log and raise the fault of a failed fence; the record with its next try's time."""
        backoff = min(RETRY_FIRST * 2 ** min(record.attempt - 1, 20), RETRY_MAX)
        record = replace(record, retry_at=self._wall() + backoff)
        if action == "migrate":
            then = "its VMs are recovered elsewhere (failed_fence: migrate)"
        else:
            then = "its VMs are left where they are (failed_fence: none)"
        message = (
            f"Fencing node {name} failed (try {record.attempt}): {record.error}; {then}; "
            f"trying again in {backoff:g} s"
        )
        log.error(message)
        self._report(FENCE_FAILED, name, DELTA_FENCE_FAILED, message)
        return record

    def _recover(self, name: str, record: FenceRecord) -> FenceRecord:
        outcome = recover(
            self.cluster, name, default_selector=self.default_selector, break_locks=self.break_locks
        )
        for line in outcome.recovered:
            log.info("recovery of node %s: VM %s", name, line)
        for problem in outcome.problems:
            log.error("recovery of node %s: %s", name, problem)
        left = outcome.stranded + [problem.split(":", 1)[0] for problem in outcome.problems]
        if left:
            message = f"VMs of fenced node {name} could not be recovered: {', '.join(left)}"
            log.error(message)
            self._report(VMS_STRANDED, name, DELTA_VM_STRANDED, message)
        else:
            self._clear(VMS_STRANDED, name)
        if record.state == FenceState.FENCED:
            self._clear(FENCE_FAILED, name)
        return replace(record, recovered=[*record.recovered, *outcome.recovered], stranded=left)

    def _report(self, kind: str, subject: str, delta: int, message: str) -> None:
        try:
            report(self.cluster, kind, subject, delta, message, maintenance=False)
        except StateError as error:
            log.error("cannot record fault %s: %s", kind, error)

    def _clear(self, kind: str, subject: str) -> None:
        try:
            clear(self.cluster, kind, subject)
        except StateError as error:
            log.error("cannot clear fault %s: %s", kind, error)
