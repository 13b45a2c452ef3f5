"""This node's part in fencing, for the daemon loop: telling peers how to fence it,
judging peers dead, fencing them (on coordinators) and fencing itself.

- :meth:`NodeFencing.mark_dead_peers` declares ``dead`` the peers whose keepalive this node
  has not seen change for ``dead_after`` (:mod:`pvc.node.peers`). Maintenance mode pauses
  it; leaving maintenance starts every peer's clock afresh, so that nothing is declared
  dead (and fenced) for the pause itself.
- The :class:`~pvc.node.fencing.Fencer` fences dead peers and recovers their VMs.
- :class:`~pvc.node.self_fence.SelfFence` stops this node's VMs when it is cut off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pvc.cluster.faults.actions import clear
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess
from pvc.config import NodeConfig
from pvc.config.fencing import SELF_FENCE_STOP_ALLOWANCE
from pvc.node.fence_storage import FenceStorage
from pvc.node.fencing import FENCE_FAILED, Fencer
from pvc.node.peers import PeerWatch
from pvc.node.self_fence import SelfFence, Watchdog
from pvc.node.vm_disks import DiskGuard
from pvc.state import nodes
from pvc.state.errors import StateError
from pvc.state.fencing import IpmiRecord, record_ipmi
from pvc.state.states import DaemonState

log = logging.getLogger("pvc.node")


class NodeFencing:
    """Dead peers, their fences and this node's own, for one node daemon."""

    def __init__(
        self,
        config: NodeConfig,
        cluster: Cluster,
        peer_watch: PeerWatch,
        *,
        storage: StorageAccess | None,
        disks: DiskGuard,
        running: Callable[[], bool],
        confirmed_at: Callable[[], float],
        fence_self: Callable[[str], None],
    ) -> None:
        """``running``: the daemon is connected and in ``run`` (a fencer may act);
        ``confirmed_at``: monotonic time of its last write ZooKeeper confirmed;
        ``fence_self(why)``: what the daemon does when it is cut off."""
        self.config = config
        self.cluster = cluster
        self.me = config.node.name
        self.peer_watch = peer_watch
        self._maintenance = False
        fence_storage = FenceStorage(cluster.store, storage, disks)
        # Coordinators fence dead peers and recover their VMs (one fencer per dead node).
        self.fencer = (
            Fencer(
                config,
                cluster,
                break_locks=fence_storage.break_locks,
                osds_down=fence_storage.osds_down,
                active=running,
            )
            if config.is_coordinator
            else None
        )
        # With failed_fence: migrate this node's VMs are recovered even if its fence fails:
        # a stuck daemon must stop them itself before peers may fence it.
        migrate_anyway = config.fencing.actions.failed_fence == "migrate"
        self.self_fence = SelfFence(
            config.timers.suicide_after,
            config.zookeeper.hosts,
            confirmed_at=confirmed_at,
            fence=fence_self,
            stall_after=config.fence_after - SELF_FENCE_STOP_ALLOWANCE if migrate_anyway else None,
            stall_evidence=2 * config.timers.keepalive_interval,
            peers_progress_since=peer_watch.progress_since,
        )

    def record_ipmi(self) -> None:
        """Tell peers how to fence this node (or warn that they cannot)."""
        ipmi = self.config.fencing.ipmi
        if not ipmi.complete:
            log.warning(
                "fencing.ipmi has no host, user and password: peers cannot fence this node, "
                "and if it fails its VMs are not recovered elsewhere"
            )
            record_ipmi(self.cluster.store, self.me, None)
            return
        assert ipmi.host and ipmi.user and ipmi.password
        record_ipmi(self.cluster.store, self.me, IpmiRecord(ipmi.host, ipmi.user, ipmi.password, ipmi.port))

    def back_in_run(self) -> None:
        """This node is in ``run`` again (registered, or alive after being declared dead): a
        fence of it that failed is no longer a fault."""
        try:
            cleared = clear(self.cluster, FENCE_FAILED, self.me)
        except StateError as error:
            log.error("cannot clear this node's fence_failed fault: %s", error)
            return
        if cleared:
            log.info(cleared)

    def start(self) -> None:
        """Start the fencer (coordinators) and the self-fence watch; arm the watchdog."""
        if self.fencer is not None:
            self.cluster.cache.listen(self.fencer.on_change)
            self.fencer.start()
        timers = self.config.timers
        # The watchdog resets the machine before peers may fence it and start its VMs.
        timeout = max(2, int(self.config.fence_after - timers.keepalive_interval))
        self.self_fence.watchdog = Watchdog.open(self.config.fencing.watchdog, timeout)
        if timers.suicide_after <= 0:
            log.warning("self-fencing is off (timers.suicide_intervals: 0)")
        if timers.suicide_after > 0 or self.self_fence.watchdog is not None:
            self.self_fence.start()

    def stop(self) -> None:
        if self.fencer is not None:
            self.fencer.stop()
        self.self_fence.stop()

    @property
    def self_fenced(self) -> bool:
        return self.self_fence.fenced

    def mark_dead_peers(self) -> list[str]:
        """Declare dead the peers whose keepalive this node has not seen change for longer
        than ``dead_after`` (on its own monotonic clock: the peers' timestamps are not used)."""
        cache = self.cluster.cache
        if cache.daemon_state(self.me) != DaemonState.RUN:
            return []
        maintenance = cache.cluster_config().maintenance
        if maintenance != self._maintenance:
            self._maintenance = maintenance
            self.peer_watch.forget_all()
            if maintenance:
                return ["maintenance mode on: dead-node detection and fencing paused"]
            return ["maintenance mode off: watching every peer's keepalive afresh"]
        if maintenance:
            return []
        done = []
        dead_after = self.config.timers.dead_after
        for node, silence in self.peer_watch.overdue(cache.nodes(), self.me, dead_after):
            # Written only if the keepalive version seen is still current: a keepalive that
            # arrives meanwhile (or another peer's verdict) makes this a no-op.
            if nodes.mark_dead(self.cluster.store, node):
                done.append(f"marked node {node.name} dead: no keepalive seen for {silence:.1f} s")
        return done
