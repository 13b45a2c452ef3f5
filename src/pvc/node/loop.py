"""The node daemon's reconcile loop.

One thread runs :meth:`NodeLoop.run_cycle` whenever a watch reports a relevant change
or the next keepalive is due. Each cycle walks a short ladder of decisions and returns
the sentences that say what it did; the loop logs them, so the log reads as the node's
decision history. ZooKeeper callbacks never act themselves: they only wake the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pvc
from pvc.cluster.faults import checks
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.storage.osd_tasks import FILE_KIND
from pvc.cluster.tasks.catalog import DOMAIN_TASKS
from pvc.cluster.tasks.services import NodeServices
from pvc.cluster.vm.xml_policy import node_policy, vm_rbd_auth
from pvc.config import NodeConfig
from pvc.errors import PVCError
from pvc.hypervisor import hard_kill
from pvc.hypervisor.adapter import Hypervisor
from pvc.node import sysinfo
from pvc.node.background import PassThread
from pvc.node.ceph_secret import define_vm_secret
from pvc.node.election import Action, PrimaryRole, decide
from pvc.node.logs import RingHandler
from pvc.node.net_manager import NetManager
from pvc.node.netstats import InterfaceSampler
from pvc.node.node_fencing import NodeFencing
from pvc.node.peers import PeerWatch
from pvc.node.phases import Phase, PrimaryPhases
from pvc.node.primary_guard import LocalLease
from pvc.node.sriov_manager import SriovHost, SriovManager
from pvc.node.vm_disks import DiskGuard
from pvc.node.vm_manager import VmManager, VmSettings
from pvc.node.zk_members import MemberWatch
from pvc.state import nodes, osd_devices
from pvc.state.cache import ClusterCache
from pvc.state.errors import ConflictError, StateError
from pvc.state.fencing import add_reclaim_run
from pvc.state.logring import LogRingWriter
from pvc.state.records import NO_PRIMARY, Keepalive, NodeStatic
from pvc.state.schema import ensure_schema, has_schema
from pvc.state.states import CoordinatorState, DaemonState, DomainState, NodeMode
from pvc.state.store import LOST, Store, Transaction
from pvc.storage.osd_keeper import OsdKeeper
from pvc.tasks import TaskRegistry, TaskWorkers
from pvc.tasks.builtin import BUILTIN_TASKS

log = logging.getLogger("pvc.node")

#: Seconds before retrying after a failed ZooKeeper operation.
RETRY_DELAY = 0.5
#: Seconds between cycles while ZooKeeper is not connected.
DISCONNECTED_POLL = 0.1

#: How often the primary watchdog checks that the role is still backed by the quorum.
WATCHDOG_PERIOD = 0.2

#: Coordinator states of a node that is (or is becoming, or leaving being) primary.
ACTING_STATES = (CoordinatorState.PRIMARY, CoordinatorState.TAKEOVER, CoordinatorState.RELINQUISH)


class NodeLoop:
    """A node daemon bound to one ZooKeeper store."""

    def __init__(
        self,
        config: NodeConfig,
        store: Store,
        *,
        phases: PrimaryPhases | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sriov_host: SriovHost | None = None,
        local_lease: LocalLease | None = None,
    ) -> None:
        """``clock`` stamps this node's keepalives (shown to users, never decided on);
        ``monotonic`` times how long each peer's keepalive has not changed, as seen here."""
        self.config = config
        self.name = config.node.name
        self.mode = NodeMode.COORDINATOR if config.is_coordinator else NodeMode.HYPERVISOR
        self.store = store
        self.clock = clock
        self.peer_watch = PeerWatch(monotonic)
        self.cache = ClusterCache(store)
        self.cluster = Cluster(store, self.cache)
        self.role = PrimaryRole(store, self.name, phases or PrimaryPhases())
        self.local_lease = local_lease
        self.ring = LogRingWriter(self.name, config.logging.zookeeper_lines)
        self.ring_handler = RingHandler(self.ring)
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._next_keepalive = 0.0
        self._closed = threading.Event()
        self._session_lost = False
        self._need_reregister = False
        self.daemon_state = DaemonState.INIT
        self._last_sentences: list[str] = []
        self.keepalives = 0
        self.interfaces = InterfaceSampler(sysinfo.network_devices(config.networks))
        uri = config.hypervisor.uri
        self.hypervisor = Hypervisor(uri) if uri else None
        # One Ceph client for storage tasks and the VM manager's disk lock checks.
        self.storage = StorageAccess(config.storage) if config.storage.ceph_conf else None
        self.disks = DiskGuard(self.storage)
        self.xml_policy = node_policy(config)
        self.vms = (
            VmManager(
                self.cluster,
                self.name,
                self.hypervisor,
                VmSettings(
                    shutdown_timeout=config.hypervisor.shutdown_timeout,
                    console_lines=config.hypervisor.console_log_lines,
                    default_selector=config.hypervisor.target_selector,
                    xml_policy=self.xml_policy,
                    console_dir=config.console_log_dir,
                    rbd_auth=vm_rbd_auth(config.storage),
                    migration_tls=config.hypervisor.migration_tls,
                ),
                disks=self.disks,
            )
            if self.hypervisor
            else None
        )
        # File-backed OSDs run under the OSD keeper, with the daemon's Ceph client.
        self.osds: OsdKeeper | None = None
        if self.storage is not None:
            self.osds = OsdKeeper(
                self.storage.conf_path,
                self.storage.client,
                config.paths.state_dir / "ceph",
                config.paths.log_dir,
            )
        # The primary probes every ZooKeeper member in its own thread (a dead member is a fault).
        self.zk_members = (
            MemberWatch(config.zookeeper.hosts, config.timers.keepalive_interval, lambda: self.role.acting)
            if config.is_coordinator
            else None
        )
        # Client networks: links and firewall on every node, gateways and DHCP on the primary
        # (a phase just before the API, so the API comes up last and goes down first).
        self.networks = NetManager(config, self.cluster) if config.networks.client_networks else None
        if self.networks is not None:
            manager = self.networks
            self.role.phases.add(
                Phase("client-networks", lambda: manager.serve(True), lambda: manager.serve(False)),
                before="api",
            )
        # Dead peers, their fences, and this node's own.
        self.fencing = NodeFencing(
            config,
            self.cluster,
            self.peer_watch,
            storage=self.storage,
            disks=self.disks,
            running=lambda: self.store.connected and self.daemon_state == DaemonState.RUN,
            confirmed_at=lambda: self.role.confirmed_at,
            fence_self=self._fence_self,
        )
        # SR-IOV: VF counts, reports and VF settings, in its own thread (idle without PFs).
        self.sriov = SriovManager(config, self.cluster, sriov_host)
        # Task worker pool: its own threads, never the loop's (see pvc.tasks.workers). Tasks
        # share the daemon's libvirt connection (thread-safe), Ceph client and OSD keeper.
        self.tasks = TaskWorkers(
            store,
            self.name,
            TaskRegistry([*BUILTIN_TASKS, *DOMAIN_TASKS]),
            services=NodeServices(
                hypervisor=self.hypervisor,
                storage=self.storage,
                osds=self.osds,
                xml_policy=self.xml_policy,
                cluster=self.cluster,
                backup=config.backup,
            ),
        )

    # -- start-up ----------------------------------------------------------------------

    def _start_osds(self) -> None:
        """Start this node's recorded file-backed OSDs (in the background: Ceph may be slow)."""
        assert self.osds is not None
        started = []
        try:
            for osd_id, device in osd_devices.read_all(self.store).items():
                if device.node != self.name or device.kind != FILE_KIND:
                    continue
                try:
                    if self.osds.start_osd(osd_id):
                        started.append(osd_id)
                except PVCError as error:
                    log.error("cannot start osd.%s: %s", osd_id, error)
        except StateError as error:
            log.error("cannot read this node's OSDs: %s", error)
        if started:
            log.info("started OSD daemons %s", ", ".join(f"osd.{i}" for i in started))

    def start(self) -> None:
        """Upgrade the schema, register, load the cache and enter ``run``."""
        pvc_logger = logging.getLogger("pvc")
        level = logging.getLevelName(self.config.logging.level.upper())
        self.ring_handler.setLevel(level)
        if pvc_logger.getEffectiveLevel() > level:
            pvc_logger.setLevel(level)
        pvc_logger.addHandler(self.ring_handler)
        # leftovers of a previous run that crashed as primary
        failed = self.role.phases.relinquish(at_once=True)
        if failed:
            log.warning("could not clean up primary services at start: %s", ", ".join(failed))
        found, now = ensure_schema(self.store, identifier=self.name)
        if found != now:
            log.info("cluster schema upgraded from version %d to %d", found, now)
        self.ring.resume(self.store)
        nodes.register(self.store, self._static_info())
        self.fencing.record_ipmi()
        self.cache.listen(self._on_change)
        if self.networks is not None:
            self.cache.listen(self.networks.on_change)
        self.cache.listen(self.sriov.on_change)
        self.cache.start()
        if not self.cache.wait_ready(30):
            raise StateError("the state cache did not load within 30 s")
        self.role.lease.watch(self._on_lease_change)
        self.store.add_listener(self._on_connection)
        threading.Thread(target=self._watch_primary_lease, name="primary-watchdog", daemon=True).start()
        self._write_daemon_state(DaemonState.RUN, keepalive=True)
        log.info(
            "node %s registered as %s (pvc %s); daemon state run",
            self.name,
            self.mode.value,
            pvc.__version__,
        )
        if self.osds is not None:
            self.osds.start()
            threading.Thread(target=self._start_osds, name="osd-start", daemon=True).start()
        self.tasks.start()
        if self.networks is not None:
            self.networks.start()
        self.sriov.start()
        if self.zk_members is not None:
            self.zk_members.start()
        self.fencing.start()
        if self.vms is not None:
            if self.hypervisor is not None:
                define_vm_secret(self.hypervisor, self.config.storage)
            self.vms.start()

    def _fence_self(self, why: str) -> None:
        """Cut off from the cluster: power off every VM, drop the primary role, stop. The
        daemon stops whatever fails on the way."""
        try:
            if self.vms is not None:
                self.vms.fence()  # starts nothing from here on
                stopped = self.vms.power_off_all(f"self-fence: {why}")
                names = ", ".join(stopped) or "none"
                log.critical("self-fence: powered off %d VM(s): %s", len(stopped), names)
        except Exception:  # libvirt gone: every QEMU of this host dies all the same
            log.exception("self-fence: libvirt failed; killing every QEMU process of this host")
            hard_kill.kill_all()
        finally:
            try:
                demoted = self.role.demote_locally(f"self-fence: {why}")
                if demoted:
                    log.critical(demoted)
            finally:
                self.request_stop()

    def _static_info(self) -> NodeStatic:
        networks = self.config.networks
        common = {
            "zookeeper_member": self.config.zookeeper_member,
            "cluster_address": str(networks.cluster.address.ip),
            "storage_address": str(networks.storage.address.ip),
        }
        if self.hypervisor is None:
            return sysinfo.static_info(self.name, self.mode, **common)
        return sysinfo.static_info(
            self.name,
            self.mode,
            peer_uri=self.config.peer_uri,
            migration_uri=self.config.migration_uri,
            **common,
        )

    # -- watch and session callbacks (kazoo threads: only record and wake) -------------

    def wake(self) -> None:
        self._wake.set()

    def _on_change(self, path: str) -> None:
        peer = nodes.keepalive_owner(path)
        if peer is not None and peer != self.name:
            self.peer_watch.saw(peer, self.cache.keepalive_zxid(peer))
        if nodes.affects_loop(path, self.name):
            self.wake()

    def _on_lease_change(self) -> None:
        self.role.lease_changed()
        self.wake()

    def _watch_primary_lease(self) -> None:
        """Step down, off the loop, when the quorum stops confirming our writes.

        The loop may be blocked in a ZooKeeper call when the cluster becomes unreachable,
        so this check runs in its own thread.
        """
        timeout = self.config.zookeeper.session_timeout
        while not self._closed.wait(WATCHDOG_PERIOD):
            if self.role.lease_expired(timeout):
                waited = time.monotonic() - self.role.confirmed_at
                demoted = self.role.demote_locally(f"no write confirmed by ZooKeeper for {waited:.1f} s")
                if demoted:
                    log.warning(demoted)
                    self.wake()

    def _on_connection(self, state: str) -> None:
        log.info("ZooKeeper connection state: %s", state)
        # Keepalives may be missed while disconnected, and the cache re-syncs afterwards:
        # judge no peer on what was seen before; watch each one afresh.
        self.peer_watch.forget_all()
        if state == LOST:
            self._session_lost = True
        self.wake()

    # -- the cycle ---------------------------------------------------------------------

    def run_cycle(self) -> list[str]:
        """One pass of the decision ladder; returns what it did, one sentence each."""
        done: list[str] = []
        if self._session_lost:
            self._session_lost = False
            self.role.session_lost()
            demoted = self.role.demote_locally("ZooKeeper session expired")
            done.append(demoted or "ZooKeeper session expired")
            self._need_reregister = True
        if not self.store.connected:
            done.append("waiting for ZooKeeper")
            return done
        try:
            if self._need_reregister:
                self._reregister()
                done.append("registered again (new ZooKeeper session or re-initialised cluster)")
            if time.monotonic() >= self._next_keepalive:
                self._keepalive()
                done.extend(self.fencing.mark_dead_peers())
                if self.role.acting:
                    done.extend(self.role.phases.supervise())
                    done.extend(
                        checks.raise_found(
                            self.cluster,
                            self.config.timers.dead_after,
                            api_authentication=self.config.api.authentication.enabled,
                            zookeeper=self.zk_members.results() if self.zk_members else None,
                            database=self._database_view(),
                        )
                    )
            done.extend(self._reconcile_domain_state())
            done.append(self._election_step())
        except StateError as error:
            self._next_keepalive = min(self._next_keepalive, time.monotonic() + RETRY_DELAY)
            done.append(f"ZooKeeper operation failed, will retry: {type(error).__name__}: {error}")
        except Exception:  # a bug must not kill the daemon: log it whole, retry later
            log.exception("unexpected error in the node loop")
            self._next_keepalive = min(self._next_keepalive, time.monotonic() + RETRY_DELAY)
            done.append("cycle failed with an unexpected error, will retry")
        return done

    def _reregister(self) -> None:
        """Register again (new session, or the cluster was re-initialised) and enter run.

        Waits while the cluster has no schema (an initialisation in progress), so that a
        tree being wiped is not written into.
        """
        if not has_schema(self.store):
            raise StateError("the cluster is being initialised; will register when it is ready")
        self.ring.resume(self.store)
        nodes.register(self.store, self._static_info())
        self._need_reregister = False
        self._write_daemon_state(DaemonState.RUN, keepalive=True)

    def _keepalive(self) -> None:
        """Keepalive, log ring and (if peers declared us dead) recovery: one transaction."""
        sent_at = time.monotonic()
        self._next_keepalive = sent_at + self.config.timers.keepalive_interval
        txn = Transaction()
        nodes.add_keepalive(txn, self.name, self._sample_keepalive())
        own = self.cache.node(self.name)
        reclaim = own is not None and own.daemon_state == DaemonState.DEAD
        if reclaim:
            domain_state, domain_version = self.cache.domain_state(self.name)
            if domain_state == DomainState.FENCE_FLUSH:
                reclaim = False
                log.warning("peers are fencing this node; it starts no VM until they are done")
            else:
                log.warning("peers declared this node dead; it is alive, back to run")
                add_reclaim_run(txn, own, domain_version)
        self.ring.add_to(txn)
        try:
            self.store.commit(txn)
        except ConflictError:
            if reclaim:
                raise  # a fence began meanwhile: the next keepalive sees it
            # Only our own znodes are written here, so one of them is gone (e.g. the cluster
            # was re-initialised): register again, which recreates them all.
            self._need_reregister = True
            raise
        self._confirmed(sent_at)
        self.keepalives += 1
        if reclaim:
            self.fencing.back_in_run()

    def _confirmed(self, sent_at: float) -> None:
        """A write sent at ``sent_at`` was committed: renew the primary's local lease, or
        step down if its guard revoked it (this daemon was not heard from in time)."""
        self.role.confirm(sent_at)
        # Renewed also during a takeover (not yet acting). A lease revoked meanwhile makes
        # the daemon step down once it acts: the next renewal fails.
        if self.local_lease is not None and not self.local_lease.renew(sent_at) and self.role.acting:
            demoted = self.role.demote_locally("the primary guard revoked the local lease")
            if demoted:
                log.warning(demoted)

    def _sample_keepalive(self) -> Keepalive:
        """Host and network device figures, plus the latest hypervisor figures the VM manager sampled."""
        figures = self.vms.figures if self.vms is not None else None
        return sysinfo.sample_keepalive(self.clock(), figures, self.interfaces.sample())

    def _database_view(self) -> checks.DatabaseView | None:
        """The provisioner database's members as Patroni recorded them (None: it is off)."""
        if not self.config.database.enabled:
            return None
        return checks.database_view(self.store, self.config.cluster.name)

    def _reconcile_domain_state(self) -> list[str]:
        """Finish flush/unflush requests of a node without a hypervisor (it has no VMs to
        move, so they complete at once); with one, the VM manager does this."""
        if self.vms is not None:
            return []
        state, version = self.cache.domain_state(self.name)
        target = {DomainState.FLUSH: DomainState.FLUSHED, DomainState.UNFLUSH: DomainState.READY}.get(state)
        if target is None:
            return []
        if nodes.finish_domain_state(self.store, self.name, version, target) is None:
            raise ConflictError(f"domain state of {self.name} changed while finishing {state}")
        return [f"domain state {state} -> {target.value}"]

    def _election_step(self) -> str:
        nodes = self.cache.nodes()
        own = next((node for node in nodes if node.name == self.name), None)
        coordinators = [node for node in nodes if node.name in self.config.coordinators]
        eligible = frozenset(
            node.name for node in coordinators if node.present and node.daemon_state == DaemonState.RUN
        )
        stale = tuple(
            node.name
            for node in coordinators
            if node.name != self.name and not node.present and node.coordinator_state in ACTING_STATES
        )
        view = self.role.view(
            is_coordinator=self.config.is_coordinator,
            daemon_state=self.daemon_state,
            shutting_down=self.stopping.is_set(),
            requested=self.cache.cluster_config().primary_node,
            requested_mzxid=self.cache.primary_request_zxid(),
            eligible=eligible,
            stale_primaries=stale,
        )
        decision = decide(view)
        if decision.action in (Action.TAKE_OVER, Action.RELINQUISH):
            with self._keepalives_meanwhile():
                return self.role.apply(decision, own.coordinator_state if own else "")
        return self.role.apply(decision, own.coordinator_state if own else "")

    @contextmanager
    def _keepalives_meanwhile(self) -> Iterator[None]:
        """Go on sending keepalives (which also renew the primary's local lease) while the
        loop runs takeover or relinquish phases: starting the API or the networks' services
        may take longer than peers wait before they declare a node dead."""
        interval = self.config.timers.keepalive_interval
        sender = PassThread("keepalive-meanwhile", self._keepalive_if_due, interval / 4)
        sender.start()
        try:
            yield
        finally:
            sender.stop()

    def _keepalive_if_due(self) -> None:
        if time.monotonic() >= self._next_keepalive:
            self._keepalive()

    # -- running and stopping ----------------------------------------------------------

    def run(self) -> None:
        """Cycle until :meth:`request_stop`, then shut down cleanly."""
        while not self.stopping.is_set():
            self.step()
            timeout = max(0.0, self._next_keepalive - time.monotonic())
            if not self.store.connected:
                # a keepalive is overdue while ZooKeeper is away: look again soon, not at once
                timeout = DISCONNECTED_POLL
            self._wake.wait(timeout)
            self._wake.clear()
        self.shutdown()

    def step(self) -> list[str]:
        """Run one cycle and log what it did (what :meth:`run` does each time it wakes)."""
        sentences = self.run_cycle()
        self._log_cycle(sentences)
        return sentences

    def request_stop(self) -> None:
        """Ask the loop to shut down (safe from signal handlers and other threads)."""
        self.stopping.set()
        self.wake()

    def _log_cycle(self, sentences: list[str]) -> None:
        for sentence in sentences:
            routine = sentence.startswith(("no action", "waiting for"))
            level = logging.DEBUG if routine and sentence in self._last_sentences else logging.INFO
            log.log(level, sentence)
        self._last_sentences = sentences

    def shutdown(self) -> None:
        """daemon state shutdown → relinquish if primary → stop; then close the session."""
        log.info("shutting down")
        # First stop claiming tasks; running ones are cancelled and get a short grace.
        self.tasks.stop()
        if self.zk_members is not None:
            self.zk_members.stop()
        self.fencing.stop()
        if self.networks is not None:
            self.networks.stop()  # links, firewall, FRR and DHCP stay for the next daemon
        self.sriov.stop()
        if self.vms is not None:
            self.vms.stop()  # VMs keep running; the next daemon adopts them
        if self.osds is not None:
            self.osds.stop()  # as a server going down takes its OSDs with it
        if self.storage is not None:
            self.storage.close()
        try:
            if self.fencing.self_fenced:
                log.critical("stopping after a self-fence; peers fence this node and recover its VMs")
            elif self.store.connected:
                self._write_daemon_state(DaemonState.SHUTDOWN)
                if self.role.acting:
                    log.info(self.role.relinquish(NO_PRIMARY, "relinquishing primary: daemon is stopping"))
                final = CoordinatorState.SECONDARY if self.config.is_coordinator else CoordinatorState.CLIENT
                log.info("daemon state stop")
                txn = Transaction()
                nodes.add_coordinator_state(txn, self.name, final)
                nodes.add_daemon_state(txn, self.name, DaemonState.STOP)
                self.daemon_state = DaemonState.STOP
                nodes.add_departure(txn, self.name)
                self.ring.add_to(txn)
                self.store.commit(txn)
            else:
                self.role.demote_locally("stopping without ZooKeeper")
        except StateError as error:
            log.error("could not record shutdown in ZooKeeper: %s", error)
        finally:
            self._closed.set()
            if self.hypervisor is not None:
                self.hypervisor.close()
            logging.getLogger("pvc").removeHandler(self.ring_handler)
            self.cache.close()
            self.store.stop()

    def _write_daemon_state(self, state: DaemonState, *, keepalive: bool = False) -> None:
        self.daemon_state = state
        txn = Transaction()
        nodes.add_daemon_state(txn, self.name, state)
        if keepalive:
            nodes.add_keepalive(txn, self.name, self._sample_keepalive())
            self._next_keepalive = time.monotonic() + self.config.timers.keepalive_interval
        self.ring.add_to(txn)
        sent_at = time.monotonic()
        self.store.commit(txn)
        self._confirmed(sent_at)
        if state == DaemonState.RUN:
            self.fencing.back_in_run()
