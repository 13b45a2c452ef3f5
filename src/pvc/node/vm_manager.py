"""The node daemon's VM manager: makes this node's libvirt match the VMs' records.

One thread reconciles whenever a VM record, a node state or a libvirt lifecycle event
changes (and every second regardless): for each VM it asks :func:`decide` for one
action and runs it in a worker thread, one action per VM at a time, so a long
shutdown or migration never blocks the others or the keepalive loop. The same
thread drives this node's flush and unflush (:mod:`pvc.node.flush`) and copies the
serial console of its running VMs into ZooKeeper.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import libvirt

from pvc.cluster.session import Cluster
from pvc.cluster.sriov.vms import has_hostdev_vf, with_node_vfs
from pvc.cluster.vm.actions import change_placement
from pvc.config import PathsSection
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.policy import XmlPolicy
from pvc.hypervisor import hard_kill
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.errors import HypervisorError
from pvc.node.flush import FlushDriver
from pvc.node.vm_decide import Act, Decision, decide
from pvc.node.vm_disks import DiskGuard
from pvc.node.vm_runtime import console_log, runtime_xml
from pvc.state.errors import StateError
from pvc.state.states import VM_MIGRATING, DaemonState, DomainState, MigrationMethod, VMState
from pvc.state.vms import VmPlacement, VmRecord, affects_vms, write_console

log = logging.getLogger("pvc.node.vms")

#: Seconds between reconciles when nothing wakes the manager.
IDLE_PERIOD = 1.0
#: Concurrent VM actions on one node.
WORKERS = 8
#: Crash restarts allowed within CRASH_WINDOW seconds before the VM is marked failed.
MAX_CRASH_RESTARTS = 5
CRASH_WINDOW = 300.0
#: Longest wait between crash restarts, in seconds (1, 2, 4, ... up to this).
MAX_BACKOFF = 30.0
#: Seconds between console log copies, and how much of a log file is read.
CONSOLE_PERIOD = 2.0
CONSOLE_READ_BYTES = 256 * 1024
#: Most console text kept in ZooKeeper per VM (its znode limit is 1 MiB).
CONSOLE_MAX_BYTES = 128 * 1024
#: Seconds a restart after a stop or crash here waits for a disk lock that looks live to
#: go stale: the OSDs keep a dead QEMU's watch for their watch timeout (30 s).
LOCK_WAIT = 35.0


@dataclass(frozen=True)
class VmSettings:
    """What the manager needs from the node configuration."""

    shutdown_timeout: float = 180.0
    console_lines: int = 1000
    default_selector: str = "mem"
    #: What VM definitions may use of this node (checked as admin before starts and migrations).
    xml_policy: XmlPolicy = field(default_factory=XmlPolicy)
    #: Where the node writes its VMs' serial consoles (the same path on every node).
    console_dir: Path = PathsSection().log_dir / "console"
    #: The VMs' cephx user and the libvirt secret with its key, for RBD disks naming no user.
    rbd_auth: tuple[str, str] | None = None
    #: Live migration streams over TLS (VIR_MIGRATE_TLS).
    migration_tls: bool = True


class VmManager:
    """Reconciles the VMs of one node."""

    def __init__(
        self,
        cluster: Cluster,
        node: str,
        hypervisor: Hypervisor,
        settings: VmSettings = VmSettings(),
        *,
        clock: Callable[[], float] = time.monotonic,
        disks: DiskGuard | None = None,
    ) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.cache = cluster.cache
        self.node = node
        self.hypervisor = hypervisor
        self.settings = settings
        self.clock = clock
        #: RBD disk lock checks around starts and stops (a no-op without Ceph).
        self.disks = disks if disks is not None else DiskGuard(None)
        self.flush = FlushDriver(cluster, node, settings.default_selector)
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._guest_stopped: set[str] = set()
        self._migrations: set[str] = set()
        self._crashes: dict[str, list[float]] = {}
        self._console_seen: dict[str, tuple[int, int]] = {}
        self._next_console = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._fenced = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="vm-action")
        self.actions_done = 0
        #: The latest hypervisor figures for the keepalive, sampled by this thread so that
        #: a keepalive never waits on libvirt (which can block during migrations).
        self.figures: dict | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start reconciling (the cache must be loaded)."""
        self.cache.listen(self._on_change)
        try:
            self.hypervisor.on_lifecycle(self._on_lifecycle)
        except HypervisorError as error:
            log.warning("no libvirt lifecycle events (%s); guest power-offs look like crashes", error)
        self._thread = threading.Thread(target=self._run, name="vm-manager", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reconciling; running VMs are left as they are (a restarted daemon adopts them)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    def _on_change(self, path: str) -> None:
        if affects_vms(path):
            self._wake.set()

    def _on_lifecycle(self, name: str, event: str, detail: int) -> None:
        if event == "stopped" and detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
            uuid = self.cache.vm_uuid_by_name(name)
            if uuid:
                self._guest_stopped.add(uuid)
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.reconcile()
            except (StateError, HypervisorError) as error:
                log.warning("VM reconcile failed: %s", error)
                if isinstance(error, HypervisorError):
                    self.hypervisor.close()  # reconnect on the next pass
            self._wake.wait(IDLE_PERIOD)
            self._wake.clear()

    # -- reconciling ----------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """One pass: start an action for every VM that needs one; returns what was started."""
        own = self.cache.node(self.node)
        if own is None or self._fenced.is_set():
            return []
        fencing = own.domain_state == DomainState.FENCE_FLUSH
        if fencing:
            self.power_off_all("peers are fencing this node")
        if own.daemon_state != DaemonState.RUN:
            return []
        # VMs busy now or at any point of this pass are skipped: an action finishing while
        # we look would otherwise be judged on a libvirt listing taken before it finished.
        with self._busy_lock:
            busy_before = set(self._busy)
        vms = self.cache.vms()
        if not vms or any(self._migrating_here(vm) for vm in vms):
            # Nothing to manage, or a migration to or from this node is under way: libvirt
            # queries now would delay the switch-over (libvirtd resumes the guest on the
            # target only once it gets to it), so this pass leaves libvirt alone.
            self._step_flush({})
            return []
        active = self.hypervisor.active()
        self.figures = {**self.hypervisor.allocation(), "vm_stats": self.hypervisor.vm_stats()}
        alive = {node.name for node in self.cache.nodes() if node.daemon_state == DaemonState.RUN}
        started = []
        for vm in vms:
            if vm.uuid in busy_before or self._is_busy(vm.uuid):
                continue
            decision = decide(
                vm,
                self.node,
                here=vm.uuid in active,
                alive=alive,
                guest_stopped=vm.uuid in self._guest_stopped,
            )
            if decision is None or not self._ready_for(vm, decision):
                continue
            if fencing and decision.act != Act.FORGET:
                continue  # peers are fencing this node: it starts nothing, only forgets
            self._submit(vm, decision)
            started.append(f"{decision.act} {vm.meta.name}: {decision.reason}")
        self._step_flush(active)
        if self.clock() >= self._next_console:
            self._next_console = self.clock() + CONSOLE_PERIOD
            self._copy_consoles(active)
        return started

    def fence(self) -> None:
        """This node fences itself: from now on no pass starts anything."""
        self._fenced.set()

    def power_off_all(self, why: str, active: dict[str, str] | None = None) -> list[str]:
        """Power off every VM running here at once, all in parallel, without recording
        anything (a fence: the VMs' placements are the fencer's to write). Returns the
        names of those powered off."""
        if active is None:
            active = self.hypervisor.active()
        # SIGKILL first: libvirt's destroy waits for QEMU to exit after SIGTERM, which a
        # QEMU cut off from its storage may take long to do. Destroy then only cleans up.
        hard_kill.kill_now(set(active))

        def destroy(uuid: str) -> str | None:
            try:
                self.hypervisor.destroy(uuid)
            except HypervisorError as error:
                log.error("VM %s could not be powered off (%s): %s", active[uuid], why, error)
                return None
            log.warning("VM %s powered off: %s", active[uuid], why)
            return active[uuid]

        if not active:
            return []
        with ThreadPoolExecutor(max_workers=len(active), thread_name_prefix="power-off") as pool:
            return [name for name in pool.map(destroy, active) if name]

    def _step_flush(self, active: dict[str, str]) -> None:
        sentence = self.flush.step(active, self._is_busy)
        if sentence:
            log.info(sentence)

    def _migrating_here(self, vm: VmRecord) -> bool:
        """A migration of this VM to this node, or from it, is under way."""
        placement = vm.placement
        incoming = (
            placement.state in VM_MIGRATING
            and placement.node == self.node
            and placement.running_on not in ("", self.node)
        )
        return incoming or vm.uuid in self._migrations

    def _is_busy(self, uuid: str) -> bool:
        with self._busy_lock:
            return uuid in self._busy

    def _ready_for(self, vm: VmRecord, decision: Decision) -> bool:
        """Crash restarts wait out their backoff; migrations wait for a live target."""
        if decision.act == Act.RECOVER:
            crashes = [t for t in self._crashes.get(vm.uuid, []) if self.clock() - t < CRASH_WINDOW]
            if crashes and self.clock() - crashes[-1] < min(MAX_BACKOFF, 2 ** (len(crashes) - 1)):
                return False
        if decision.act == Act.FINISH_MIGRATION:
            return self.hypervisor.state(vm.uuid) == "running"  # paused: still arriving
        if decision.act == Act.MIGRATE:
            target = self.cache.node(vm.placement.node)
            return target is not None and target.daemon_state == DaemonState.RUN
        return True

    def _submit(self, vm: VmRecord, decision: Decision) -> None:
        with self._busy_lock:
            self._busy.add(vm.uuid)
            if decision.act == Act.MIGRATE:
                self._migrations.add(vm.uuid)
        self._pool.submit(self._act, vm, decision)

    def _act(self, vm: VmRecord, decision: Decision) -> None:
        try:
            if self._fenced.is_set():
                return  # the node fenced itself after this action was decided
            message = ACTIONS[decision.act](self, vm)
            if message:
                log.info("VM %s: %s", vm.meta.name, message)
            self.actions_done += 1
        except (StateError, HypervisorError) as error:
            log.warning("VM %s: %s failed: %s", vm.meta.name, decision.act, error)
        except Exception:  # a worker must never die silently
            log.exception("VM %s: %s failed unexpectedly", vm.meta.name, decision.act)
        finally:
            with self._busy_lock:
                self._busy.discard(vm.uuid)
                self._migrations.discard(vm.uuid)
            self._wake.set()

    # -- placement writes -------------------------------------------------------------------

    def _update(self, vm: VmRecord, change: Callable[[VmPlacement], VmPlacement | None]) -> None:
        change_placement(self.cluster, vm.uuid, change)

    def _mark_running_here(self, vm: VmRecord, **fields: object) -> None:
        self._update(vm, lambda p: replace(p, running_on=self.node, **fields))

    def _mark_not_running(self, vm: VmRecord, **fields: object) -> None:
        def change(placement: VmPlacement) -> VmPlacement:
            running_on = "" if placement.running_on in ("", self.node) else placement.running_on
            return replace(placement, running_on=running_on, **fields)

        self._update(vm, change)

    # -- actions (worker threads) -----------------------------------------------------------

    def _start(self, vm: VmRecord, *, counted: bool = False, lock_wait: float = 0.0) -> str:
        self._guest_stopped.discard(vm.uuid)
        fresh = self.cache.vm(vm.uuid) or vm
        try:
            xml = self._runtime_xml(fresh)
        except DomainXMLError as error:
            reason = f"start on node {self.node} refused: the VM definition is not allowed: {error}"
            self._update(vm, lambda p: replace(p, state=VMState.FAIL, failed_reason=reason, running_on=""))
            return f"marked failed: {reason}"
        refusal = self.disks.before_start(fresh.xml, wait=lock_wait)
        if refusal is not None:
            if vm.uuid in self.hypervisor.active():  # the live lock is its own: adopt it
                self._mark_running_here(vm)
                return "already running here; adopted"
            reason = f"start on node {self.node} refused: {refusal}"
            self._update(vm, lambda p: replace(p, state=VMState.FAIL, failed_reason=reason, running_on=""))
            return f"marked failed: {reason}"
        try:
            self.hypervisor.create(xml)
        except HypervisorError as error:
            if vm.uuid in self.hypervisor.active():  # it was running after all: adopt it
                self._mark_running_here(vm)
                return f"already running here ({error}); adopted"
            reason = f"start on node {self.node} failed: {error}"
            self._update(vm, lambda p: replace(p, state=VMState.FAIL, failed_reason=reason, running_on=""))
            return f"marked failed: {reason}"
        extra = {"state": VMState.START} if vm.placement.state in VM_MIGRATING else {}
        if counted:
            self._update(vm, lambda p: replace(p, running_on=self.node, restarts=p.restarts + 1, **extra))
            return "its QEMU had died; started it again"
        self._mark_running_here(vm, failed_reason="", **extra)
        return "started"

    def _recover(self, vm: VmRecord) -> str:
        now = self.clock()
        crashes = [t for t in self._crashes.get(vm.uuid, []) if now - t < CRASH_WINDOW] + [now]
        self._crashes[vm.uuid] = crashes
        if len(crashes) > MAX_CRASH_RESTARTS:
            reason = f"its QEMU died {len(crashes)} times within {CRASH_WINDOW:g} s on node {self.node}"
            self._update(vm, lambda p: replace(p, state=VMState.FAIL, failed_reason=reason, running_on=""))
            return f"marked failed: {reason}"
        return self._start(vm, counted=True, lock_wait=LOCK_WAIT)

    def _guest_stopped_act(self, vm: VmRecord) -> str:
        self._guest_stopped.discard(vm.uuid)
        self._mark_not_running(vm, state=VMState.STOP)
        self._release_disks(vm)
        return "the guest powered itself off; state stop"

    def _adopt(self, vm: VmRecord) -> str:
        self._mark_running_here(vm)
        return "running here; adopted"

    def _finish_migration(self, vm: VmRecord) -> str:
        self._mark_running_here(vm, state=VMState.START)
        return "arrived; state start"

    def _restart(self, vm: VmRecord) -> str:
        outcome = self.hypervisor.shutdown(vm.uuid, self.settings.shutdown_timeout)
        self._mark_not_running(vm)
        started = self._start(vm, lock_wait=LOCK_WAIT)
        if started == "started":
            self._update(
                vm, lambda p: replace(p, state=VMState.START) if p.state == VMState.RESTART else None
            )
            return f"restarted ({outcome})"
        return started

    def _shutdown(self, vm: VmRecord) -> str:
        outcome = self.hypervisor.shutdown(vm.uuid, self.settings.shutdown_timeout)
        self._after_stop(vm)
        return outcome

    def _power_off(self, vm: VmRecord) -> str:
        self.hypervisor.destroy(vm.uuid)
        self._after_stop(vm)
        return "powered off"

    def _after_stop(self, vm: VmRecord) -> None:
        def change(placement: VmPlacement) -> VmPlacement:
            state = VMState.STOP if placement.state == VMState.SHUTDOWN else placement.state
            running_on = "" if placement.running_on in ("", self.node) else placement.running_on
            return replace(placement, state=state, running_on=running_on)

        self._update(vm, change)
        self._release_disks(vm)

    def _release_disks(self, vm: VmRecord) -> None:
        """Clear the stale locks this node's stopped QEMU left on the VM's RBD disks."""
        fresh = self.cache.vm(vm.uuid) or vm
        self.disks.after_stop(fresh.xml)

    def _mark_stopped(self, vm: VmRecord) -> str:
        self._update(vm, lambda p: replace(p, state=VMState.STOP) if p.state == VMState.SHUTDOWN else None)
        return "not running; state stop"

    def _forget(self, vm: VmRecord) -> str:
        self._mark_not_running(vm)
        return "not running here; record cleared"

    def _migrate(self, vm: VmRecord) -> str:
        target = vm.placement.node
        live_only = vm.placement.state == VMState.MIGRATE_LIVE
        if vm.meta.migration_method == MigrationMethod.SHUTDOWN and not live_only:
            return self._migrate_by_shutdown(vm, target, "its migration method is shutdown")
        if vm.meta.migration_method == MigrationMethod.NONE and not live_only and has_hostdev_vf(vm.xml):
            return self._migrate_by_shutdown(vm, target, "it has an SR-IOV VF as a PCI device")
        try:
            self._runtime_xml(self.cache.vm(vm.uuid) or vm)
        except DomainXMLError as error:
            return self._migration_failed(vm, target, True, f"the VM definition is not allowed: {error}")
        peer = self.cache.node(target)
        if peer is None or not peer.static.peer_uri:
            return self._migration_failed(vm, target, live_only, "the target publishes no libvirt address")
        # A connection of its own: the migration call lasts seconds and must not share
        # one with the reconcile pass's queries.
        connection = Hypervisor(self.hypervisor.uri)
        try:
            result = connection.migrate(
                vm.uuid,
                peer.static.peer_uri,
                max_downtime_ms=vm.meta.migration_max_downtime,
                migration_uri=peer.static.migration_uri or None,
                tls=self.settings.migration_tls,
            )
        except HypervisorError as error:
            return self._migration_failed(vm, target, live_only, str(error))
        finally:
            connection.close()

        def done(placement: VmPlacement) -> VmPlacement:
            state = VMState.START if placement.state in VM_MIGRATING else placement.state
            return replace(placement, state=state, running_on=target)

        self._update(vm, done)
        downtime = "unknown" if result.downtime_ms is None else f"{result.downtime_ms} ms"
        return f"live-migrated to {target} in {result.seconds:.1f} s (downtime {downtime})"

    def _migration_failed(self, vm: VmRecord, target: str, live_only: bool, error: str) -> str:
        if not live_only and vm.meta.migration_method != MigrationMethod.LIVE:
            return self._migrate_by_shutdown(vm, target, f"live migration failed ({error})")

        def back(placement: VmPlacement) -> VmPlacement:
            last = "" if placement.last_node == self.node else placement.last_node
            return replace(
                placement, node=self.node, last_node=last, state=VMState.START, running_on=self.node
            )

        self._update(vm, back)
        return f"live migration to {target} failed ({error}); it stays here"

    def _migrate_by_shutdown(self, vm: VmRecord, target: str, why: str) -> str:
        outcome = self.hypervisor.shutdown(vm.uuid, self.settings.shutdown_timeout)
        self._mark_not_running(vm, state=VMState.START)
        self._release_disks(vm)
        return f"{why}: shut down here ({outcome}) for node {target} to start it"

    # -- console --------------------------------------------------------------------------

    def _copy_consoles(self, active: dict[str, str]) -> None:
        """Copy the tail of each running VM's serial log into ZooKeeper when the file changed."""
        for uuid in active:
            vm = self.cache.vm(uuid)
            path = self._serial_log(vm) if vm is not None else ""
            if not path:
                continue
            try:
                stat = os.stat(path)
            except OSError:
                continue
            seen = (stat.st_mtime_ns, stat.st_size)
            if self._console_seen.get(uuid) == seen:
                continue
            text = read_tail(path, self.settings.console_lines)[-CONSOLE_MAX_BYTES:]
            if not text:
                continue
            try:
                write_console(self.store, uuid, text)
                self._console_seen[uuid] = seen
            except StateError as error:
                log.debug("console of %s not copied: %s", vm.meta.name, error)

    def _serial_log(self, vm: VmRecord) -> str:
        """The file the node logs the VM's serial console to."""
        return str(console_log(self.settings.console_dir, vm.meta.name))

    def _runtime_xml(self, vm: VmRecord) -> str:
        """The VM's XML as this node runs it (DomainXMLError when the node refuses it)."""
        self.settings.console_dir.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        policy = with_node_vfs(settings.xml_policy, self.cluster, self.node)
        return runtime_xml(vm.xml, policy, settings.console_dir, settings.rbd_auth)


def read_tail(path: str, lines: int) -> str:
    """The last ``lines`` lines of a log file ('' if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - CONSOLE_READ_BYTES))
            data = handle.read()
    except OSError:
        return ""
    text = data.decode(errors="replace").replace("\r", "")
    return "\n".join(text.splitlines()[-lines:])


ACTIONS: dict[Act, Callable[[VmManager, VmRecord], str]] = {
    Act.START: VmManager._start,
    Act.RECOVER: VmManager._recover,
    Act.GUEST_STOPPED: VmManager._guest_stopped_act,
    Act.ADOPT: VmManager._adopt,
    Act.FINISH_MIGRATION: VmManager._finish_migration,
    Act.MIGRATE: VmManager._migrate,
    Act.RESTART: VmManager._restart,
    Act.SHUTDOWN: VmManager._shutdown,
    Act.POWER_OFF: VmManager._power_off,
    Act.MARK_STOPPED: VmManager._mark_stopped,
    Act.FORGET: VmManager._forget,
}
