"""Storage changes made at once through the primary's Ceph client: pools, volumes, snapshots,
OSD in/out and cluster flags.

Each call checks its input, makes the change through :mod:`pvc.storage`, then refreshes
the changed part of the ZooKeeper mirror and waits until the cache (and so the next
read) shows it. Adapter errors become domain errors
(:func:`pvc.cluster.storage.access.mapped_errors`). Long operations (OSDs, benchmarks)
are tasks: see :mod:`pvc.cluster.storage.osd_tasks` and :mod:`pvc.cluster.storage.benchmark`.
"""

from __future__ import annotations

from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.session import Cluster
from pvc.cluster.storage import mirror, queries
from pvc.cluster.storage.access import StorageAccess, StorageConflict, mapped_errors
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import rbd_volumes
from pvc.storage import disk_locks, osds, pools, snapshots, volumes
from pvc.storage.tiers import DEFAULT_TIER, TIERS
from pvc.storage.units import parse_size

#: The tiers a pool may be put on.
POOL_TIERS = TIERS


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise ClusterError(str(error)) from None


def vms_using_volume(cluster: Cluster, pool: str, volume: str) -> list[str]:
    """Names of the VMs whose XML has ``pool/volume`` as an RBD disk."""
    users = []
    for record in cluster.cache.vms():
        try:
            disks = rbd_volumes(record.xml)
        except DomainXMLError:
            continue
        if (pool, volume) in disks:
            users.append(record.meta.name)
    return sorted(users)


class StorageOps:
    """The immediate storage changes, over one :class:`StorageAccess` and the state store."""

    def __init__(self, cluster: Cluster, access: StorageAccess) -> None:
        self.cluster = cluster
        self.access = access

    def _publish(self, scope: mirror.Scope) -> None:
        """Write ``scope`` to the mirror and wait (briefly) until the cache shows it."""
        self.cluster.settle(mirror.publish_scope(self.cluster.store, scope))

    def _refresh_volume(self, pool: str, volume: str) -> None:
        with mapped_errors(self.access):
            scope = mirror.volume_scope(self.access.client(), pool, volume)
        self._publish(scope)

    def _refresh_pool(self, pool: str) -> None:
        with mapped_errors(self.access):
            scope = mirror.pool_scope(self.access.client(), pool)
        self._publish(scope)

    def refresh_osds(self) -> None:
        """Refresh every OSD's mirror record now."""
        with mapped_errors(self.access):
            scope = mirror.osd_scope(self.access.client())
        self._publish(scope)

    # --- pools ------------------------------------------------------------------------------

    def add_pool(self, name: str, pgs: int, replcfg: str, tier: str | None = None) -> str:
        """Create an RBD pool with ``pgs`` PGs, ``copies=N,mincopies=M`` replication, on ``tier``."""
        tier = tier or DEFAULT_TIER
        with mapped_errors(self.access):  # the adapter checks every argument before it creates
            pools.create(self.access.client(), name, pgs, replcfg, tier=tier)
        self._refresh_pool(name)
        return f"Created RBD pool '{name}' with {pgs} PGs ({replcfg}) on the {tier} tier"

    def remove_pool(self, name: str, confirmed: bool) -> str:
        """Delete a pool and all its volumes; refused unless ``confirmed``."""
        if not confirmed:
            raise ClusterError(
                "Removing a pool deletes all its volumes: confirm with yes-i-really-mean-it=yes"
            )
        used = [
            f"{vm} ({volume['name']})"
            for volume in queries.list_volumes(self.cluster, pool=name)
            for vm in vms_using_volume(self.cluster, name, volume["name"])
        ]
        if used:
            raise StorageConflict(f"Pool '{name}' holds disks of VMs: {', '.join(used)}")
        with mapped_errors(self.access):
            pools.remove(self.access.client(), name)
        self._refresh_pool(name)
        return f"Removed RBD pool '{name}' and all its volumes"

    def set_pgs(self, name: str, pgs: int) -> str:
        """Change a pool's PG count (Ceph moves towards it in the background)."""
        with mapped_errors(self.access):
            pools.set_pgs(self.access.client(), name, pgs)
        self._refresh_pool(name)
        return f"Set PGs of pool '{name}' to {pgs}"

    # --- volumes ----------------------------------------------------------------------------

    def add_volume(self, pool: str, name: str, size: str, force: bool = False) -> str:
        """Create a volume; refused beyond the pool's free space unless ``force``."""
        size_bytes = _size(size)
        with mapped_errors(self.access):
            volumes.check_name(name)
            created = volumes.create(self.access.client(), pool, name, size_bytes, force=force)
        self._refresh_volume(pool, name)
        return f"Created RBD volume '{pool}/{name}' of {created.size_human}"

    def resize_volume(self, pool: str, name: str, size: str, force: bool = False) -> str:
        """Grow a volume (shrinking is refused: it would cut off the guest's data)."""
        size_bytes = _size(size)
        with mapped_errors(self.access):
            resized = volumes.resize(self.access.client(), pool, name, size_bytes, force=force)
        self._refresh_volume(pool, name)
        return f"Resized RBD volume '{pool}/{name}' to {resized.size_human}"

    def modify_volume(
        self, pool: str, name: str, new_size: str | None, new_name: str | None, force: bool = False
    ) -> str:
        """Resize and/or rename a volume (resize first); at least one of the two is needed."""
        if not new_size and not new_name:
            raise ClusterError("Nothing to change: give new_size and/or new_name")
        messages = []
        if new_size:
            messages.append(self.resize_volume(pool, name, new_size, force))
        if new_name:
            messages.append(self.rename_volume(pool, name, new_name))
        return "; ".join(messages)

    def rename_volume(self, pool: str, name: str, new_name: str) -> str:
        """Rename a volume that no VM uses."""
        users = vms_using_volume(self.cluster, pool, name)
        if users:
            raise StorageConflict(
                f"Volume '{pool}/{name}' is a disk of VM {', '.join(users)}; a rename would break it"
            )
        with mapped_errors(self.access):
            volumes.check_name(new_name)
            volumes.rename(self.access.client(), pool, name, new_name)
        self._refresh_volume(pool, name)
        self._refresh_volume(pool, new_name)
        return f"Renamed RBD volume '{pool}/{name}' to '{new_name}'"

    def clone_volume(self, pool: str, name: str, new_name: str, force: bool = False) -> str:
        """Copy a volume into a new independent one in the same pool."""
        with mapped_errors(self.access):
            volumes.check_name(new_name)
            volumes.clone(self.access.client(), pool, name, new_name, force=force)
        self._refresh_volume(pool, new_name)
        return f"Cloned RBD volume '{pool}/{name}' to '{pool}/{new_name}'"

    def remove_volume(self, pool: str, name: str) -> str:
        """Delete a volume that no VM has as a disk and no client has open."""
        users = vms_using_volume(self.cluster, pool, name)
        if users:
            raise StorageConflict(
                f"Volume '{pool}/{name}' is a disk of VM {', '.join(users)}; remove it from the VM first"
            )
        with mapped_errors(self.access):
            client = self.access.client()
            # librbd's remove waits without limit on an image a dead client left locked
            disk_locks.clear_stale(client, pool, name)
            volumes.remove(client, pool, name)
        self._refresh_volume(pool, name)
        return f"Removed RBD volume '{pool}/{name}'"

    def scan_volume(self, pool: str, name: str) -> str:
        """Refresh one volume's record from Ceph now."""
        with mapped_errors(self.access):
            scope = mirror.volume_scope(self.access.client(), pool, name)
        self._publish(scope)
        if not scope.records:
            raise NotFoundError(f"Volume '{name}' not found in pool '{pool}'")
        return f"Refreshed the figures of RBD volume '{pool}/{name}'"

    def volume_size(self, pool: str, name: str) -> int:
        """A volume's size in bytes, from Ceph."""
        with mapped_errors(self.access):
            return volumes.info(self.access.client(), pool, name).size

    def refresh_volume(self, pool: str, name: str) -> None:
        """Refresh one volume's mirror record (after a change made elsewhere, e.g. an upload)."""
        self._refresh_volume(pool, name)

    # --- snapshots --------------------------------------------------------------------------

    def add_snapshot(self, pool: str, volume: str, name: str) -> str:
        """Take a snapshot of a volume."""
        with mapped_errors(self.access):
            snapshots.check_name(name)
            snapshots.create(self.access.client(), pool, volume, name)
        self._refresh_volume(pool, volume)
        return f"Created snapshot '{name}' of RBD volume '{pool}/{volume}'"

    def rename_snapshot(self, pool: str, volume: str, name: str, new_name: str) -> str:
        """Rename a snapshot."""
        with mapped_errors(self.access):
            snapshots.check_name(new_name)
            snapshots.rename(self.access.client(), pool, volume, name, new_name)
        self._refresh_volume(pool, volume)
        return f"Renamed snapshot '{name}' of RBD volume '{pool}/{volume}' to '{new_name}'"

    def remove_snapshot(self, pool: str, volume: str, name: str) -> str:
        """Remove a snapshot (refused while clones depend on it)."""
        with mapped_errors(self.access):
            snapshots.remove(self.access.client(), pool, volume, name)
        self._refresh_volume(pool, volume)
        return f"Removed snapshot '{name}' of RBD volume '{pool}/{volume}'"

    def rollback_snapshot(self, pool: str, volume: str, name: str) -> str:
        """Roll a volume back to a snapshot; refused while a client (a running VM) has it open."""
        with mapped_errors(self.access):
            client = self.access.client()
            if volumes.watchers(client, pool, volume):
                raise StorageConflict(f"Volume '{pool}/{volume}' is in use; stop the VM using it first")
            snapshots.rollback(client, pool, volume, name)
        self._refresh_volume(pool, volume)
        return f"Rolled RBD volume '{pool}/{volume}' back to snapshot '{name}'"

    # --- OSD state and cluster flags --------------------------------------------------------

    def set_osd_state(self, osd_id: str, state: str) -> str:
        """Mark an OSD in or out."""
        if not osd_id.isdigit():
            raise NotFoundError(f"OSD {osd_id} not found")
        with mapped_errors(self.access):
            client = self.access.client()
            osds.get(client, int(osd_id))
            (osds.set_in if state == "in" else osds.set_out)(client, [int(osd_id)])
        self.refresh_osds()
        return f"Set OSD {osd_id} {state}"

    def set_option(self, option: str, action: str) -> str:
        """Set or unset a cluster-wide OSD flag (noout, noscrub ...)."""
        with mapped_errors(self.access):
            client = self.access.client()
            (osds.set_flag if action == "set" else osds.unset_flag)(client, option)
        return f"{'Set' if action == 'set' else 'Unset'} OSD property '{option}'"
