"""What a fence does to the storage of the node it powered off.

Its OSDs are marked down as the fence begins, and its VMs' RBD disks are unlocked once
it is off (their holder is gone, and breaking a lock blocklists it), so that the VMs
starting elsewhere neither wait for the locks nor for the monitors to notice the OSDs'
silence (their heartbeat grace is 20 s by default).
"""

from __future__ import annotations

import logging

from pvc.cluster.errors import ClusterError
from pvc.cluster.storage.access import StorageAccess, mapped_errors
from pvc.node.vm_disks import DiskGuard
from pvc.state import osd_devices
from pvc.state.errors import StateError
from pvc.state.store import Store
from pvc.state.vms import VmRecord
from pvc.storage import osds

log = logging.getLogger("pvc.node.fencing")


class FenceStorage:
    """The storage side of fencing, through the node's shared Ceph client."""

    def __init__(self, store: Store, storage: StorageAccess | None, disks: DiskGuard) -> None:
        self.store = store
        self.storage = storage if storage is not None and storage.configured else None
        self.disks = disks

    def break_locks(self, vm: VmRecord, held_from: str | None = None) -> str | None:
        """Break every lock on the VM's disks (or those held from address ``held_from``);
        a problem, or None."""
        return self.disks.break_all(vm.xml, held_from=held_from)

    def osds_down(self, node: str) -> str | None:
        """Mark ``node``'s OSDs down; what was done (None when there was nothing to do)."""
        if self.storage is None:
            return None
        try:
            ids = sorted(i for i, device in osd_devices.read_all(self.store).items() if device.node == node)
            if not ids:
                return None
            with mapped_errors(self.storage):
                osds.mark_down(self.storage.client(), ids)
        except (StateError, ClusterError) as error:
            log.error("could not mark the OSDs of fenced node %s down: %s", node, error)
            return f"OSDs not marked down: {error}"
        return "marked " + ", ".join(f"osd.{i}" for i in ids) + " down"
