"""The VM manager's check of a VM's RBD disk locks around its starts and stops.

Before a start, stale locks (left by a QEMU that died, see :mod:`pvc.storage.disk_locks`)
are broken, and a *live* lock refuses the start: its holder may be the same VM running
on another node, and librbd's exclusive lock is cooperative, so a second QEMU would
simply be handed the lock and both would write to the disk. After a stop, stale locks
the stopped QEMU left are cleared so the next start (here or elsewhere) finds none.

A node without Ceph configured, or a VM without RBD disks, skips all of this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.storage.access import StorageAccess, mapped_errors
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import rbd_volumes
from pvc.storage import disk_locks
from pvc.storage.volumes import Lock

log = logging.getLogger("pvc.node.vms")

#: Seconds between two looks at a live lock while waiting for it to go stale.
RECHECK_PERIOD = 1.0


class DiskGuard:
    """Lock checks on a VM's RBD disks through the node's shared Ceph client."""

    def __init__(
        self,
        access: StorageAccess | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.access = access if access is not None and access.configured else None
        self._sleep = sleep
        self._clock = clock

    @property
    def active(self) -> bool:
        """True when this node can reach Ceph to check locks."""
        return self.access is not None

    def rbd_disks(self, xml: str) -> list[tuple[str, str]]:
        """``(pool, volume)`` of the VM's RBD disks ([] for XML that cannot be parsed)."""
        try:
            return rbd_volumes(xml)
        except DomainXMLError:
            return []

    def before_start(self, xml: str, *, wait: float = 0.0) -> str | None:
        """Clear stale locks on the VM's RBD disks; a reason to refuse the start, or None.

        The start is refused when a disk has a live lock (the reason names the disk and
        the holder's address) or when its locks cannot be read. With ``wait`` a live
        lock gets up to that many seconds to go stale first: after this node's own QEMU
        died, the OSDs keep its watch (and so its lock looks live) for about 30 s.
        A volume that does not exist is left for the hypervisor to report.
        """
        if self.access is None:
            return None
        disks = self.rbd_disks(xml)
        deadline = self._clock() + wait
        for pool, volume in disks:
            while True:
                live, problem = self._clear(pool, volume)
                if problem is not None:
                    return problem
                if not live:
                    break
                if self._clock() >= deadline:
                    holders = ", ".join(f"{lock.locker} at {lock.address}" for lock in live)
                    return (
                        f"disk {pool}/{volume} is locked by a live client ({holders}); "
                        "the VM may be running elsewhere"
                    )
                self._sleep(min(RECHECK_PERIOD, max(0.0, deadline - self._clock())))
        return None

    def after_stop(self, xml: str) -> None:
        """Clear the stale locks a stopped QEMU left on the VM's RBD disks (never raises)."""
        if self.access is None:
            return
        for pool, volume in self.rbd_disks(xml):
            try:
                live, problem = self._clear(pool, volume)
            except Exception:  # a stop must never fail on this
                log.exception("disk %s/%s: checking its locks failed", pool, volume)
                continue
            if problem is not None:
                log.warning("disk %s/%s: %s", pool, volume, problem)
            elif live:
                # e.g. a killed QEMU whose watch the OSDs have not timed out yet
                log.info(
                    "disk %s/%s still has live locks (%s); left for the next start",
                    pool,
                    volume,
                    ", ".join(lock.address for lock in live),
                )

    def break_all(self, xml: str, *, held_from: str | None = None) -> str | None:
        """Break every lock on the VM's RBD disks, live or not (their holders are
        blocklisted), or only those held from address ``held_from``: only for a VM whose
        node (or that host) is known to be off. A problem, or None."""
        if self.access is None:
            return None
        for pool, volume in self.rbd_disks(xml):
            try:
                with mapped_errors(self.access):
                    client = self.access.client()
                    if held_from is None:
                        broken = disk_locks.flush(client, pool, volume)
                    else:
                        broken = disk_locks.break_held_from(client, pool, volume, held_from)
            except NotFoundError:
                continue
            except ClusterError as error:
                return f"cannot break the locks of disk {pool}/{volume}: {error}"
            if broken:
                log.info("disk %s/%s: broke %d lock(s) of the fenced node", pool, volume, broken)
        return None

    def _clear(self, pool: str, volume: str) -> tuple[list[Lock], str | None]:
        """Break the stale locks of one disk: (the live locks left, a problem or None)."""
        assert self.access is not None
        try:
            with mapped_errors(self.access):
                client = self.access.client()
                live, stale = disk_locks.split_locks(client, pool, volume)
                if stale:
                    broken = disk_locks.clear_stale(client, pool, volume)
                    if broken:
                        log.info(
                            "disk %s/%s: broke %d stale lock(s) of %s",
                            pool,
                            volume,
                            broken,
                            ", ".join(lock.address for lock in stale),
                        )
                return live, None
        except NotFoundError:
            return [], None
        except ClusterError as error:
            return [], f"cannot check the locks of disk {pool}/{volume}: {error}"
