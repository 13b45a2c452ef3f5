"""What a VM creation whose worker was lost left behind, and removing it.

A ``provisioner.create`` run removes what it made when it fails. When its node dies (or
loses its ZooKeeper session) mid-way it cannot: the worker pool that finds the run
abandoned marks it FAILURE "worker lost" and calls :func:`sweep_lost` on its own node.
That removes only what the run is known to have made:

* each planned volume that carries the run's task id in its RBD metadata
  (:data:`pvc.cluster.provisioner.build.MADE_BY`, set as the volume is made) and that no
  VM's definition uses any more;
* the VM of the planned name if it is still in state ``provision`` (it never reached the
  start stage) and every RBD volume it names was made by the run (a VM without volumes:
  when no other creation of that name is under way).

A VM that reached ``start`` is kept with its volumes: the creation had finished but for
its record. What is removed, or could not be, is added to the task's error.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pvc.cluster.provisioner.build import MADE_BY
from pvc.cluster.session import Cluster
from pvc.cluster.storage import mirror
from pvc.cluster.storage.access import StorageAccess, mapped_errors
from pvc.cluster.tasks.services import NodeServices
from pvc.cluster.vm import actions as vm_actions
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import rbd_volumes
from pvc.state.states import VMState
from pvc.storage import disk_locks, volumes
from pvc.tasks.records import TaskRecord
from pvc.tasks.views import records

log = logging.getLogger(__name__)

#: The task type whose runs this cleans up after (``pvc.cluster.provisioner.create``).
CREATE_TASK = "provisioner.create"
#: Passes over what a lost run made, and the seconds between them, while some is left.
SWEEP_ATTEMPTS = 6
SWEEP_PAUSE = 5.0


def _volumes_of(xml: str) -> list[tuple[str, str]]:
    try:
        return rbd_volumes(xml)
    except DomainXMLError:
        return []


def _made_by(access: StorageAccess | None, pool: str, volume: str) -> str | None:
    if access is None:
        return None
    with mapped_errors(access):
        return volumes.get_metadata(access.client(), pool, volume, MADE_BY)


def _another_creation_of(cluster: Cluster, name: str, task_id: str) -> bool:
    for record in records(cluster.cache):
        if record.name != CREATE_TASK or record.id == task_id or record.is_finished:
            continue
        if ((record.args.get("plan") or {}).get("vm_data") or {}).get("name") == name:
            return True
    return False


def _sweep_vm(cluster: Cluster, access: StorageAccess | None, name: str, task_id: str) -> str | None:
    """Remove the run's VM if it is still being provisioned; what was done, or None."""
    uuid = cluster.cache.vm_uuid_by_name(name)
    record = cluster.cache.vm(uuid) if uuid else None
    if record is None or record.placement.state != VMState.PROVISION:
        return None
    disks = _volumes_of(record.xml)
    if disks:
        ours = all(_made_by(access, pool, volume) == task_id for pool, volume in disks)
    else:
        ours = not _another_creation_of(cluster, name, task_id)
    if not ours:
        return None
    vm_actions.remove(cluster, record.uuid)
    return f"VM {name}"


def _sweep_volume(cluster: Cluster, access: StorageAccess, pool: str, volume: str, task_id: str) -> bool:
    """Remove a volume the run made that no VM uses; whether it was removed."""
    if any((pool, volume) in _volumes_of(record.xml) for record in cluster.cache.vms()):
        return False
    if _made_by(access, pool, volume) != task_id:
        return False
    with mapped_errors(access):
        client = access.client()
        disk_locks.clear_stale(client, pool, volume)
        volumes.remove(client, pool, volume)
    try:
        with mapped_errors(access):
            mirror.publish_scope(cluster.store, mirror.volume_scope(client, pool, volume))
    except Exception as error:  # removed all the same; the primary's storage refresher catches up
        log.warning("volume %s/%s removed, but not yet from the cluster's view: %s", pool, volume, error)
    return True


def _sweep_once(
    cluster: Cluster, access: StorageAccess | None, name: str, planned: list[tuple[str, str]], task_id: str
) -> tuple[list[str], list[str]]:
    """One pass: (what was removed, what could not be, with why)."""
    removed: list[str] = []
    left: list[str] = []
    try:
        vm = _sweep_vm(cluster, access, name, task_id)
        if vm:
            removed.append(vm)
    except Exception as error:
        left.append(f"VM {name} ({error})")
    for pool, volume in planned:
        if access is None:
            left.append(f"volume {pool}/{volume} (no Ceph storage on this node)")
            continue
        try:
            if _sweep_volume(cluster, access, pool, volume, task_id):
                removed.append(f"volume {pool}/{volume}")
        except Exception as error:
            left.append(f"volume {pool}/{volume} ({error})")
    return removed, left


def sweep_lost(
    services: Any, record: TaskRecord, *, attempts: int = SWEEP_ATTEMPTS, pause: float = SWEEP_PAUSE
) -> str | None:
    """Remove what the lost creation ``record`` made (see the module), trying again after a
    pause while something could not be (the loss may come with ZooKeeper or Ceph troubles);
    a sentence saying what was removed or kept, or None when it had made nothing."""
    vm_data = (record.args.get("plan") or {}).get("vm_data") or {}
    name = str(vm_data.get("name", ""))
    planned = [(str(v["pool"]), str(v["volume"])) for v in vm_data.get("volumes", []) if "volume" in v]
    cluster = services.cluster if isinstance(services, NodeServices) else None
    access = services.storage if isinstance(services, NodeServices) else None
    if cluster is None:
        return "what it made was not checked: this node has no view of the cluster"
    log.info("creation %s of VM %s lost its worker: removing what it made", record.id, name)
    removed: list[str] = []
    left: list[str] = []
    for attempt in range(attempts):
        if attempt:
            log.warning("creation %s: could not remove %s; trying again", record.id, "; ".join(left))
            time.sleep(pause)
        done, left = _sweep_once(cluster, access, name, planned, record.id)
        removed += done
        if not left:
            break
    log.info(
        "creation %s of VM %s: removed %s; left %s", record.id, name, removed or "nothing", left or "nothing"
    )
    if not removed and not left:
        return None
    parts = [f"removed what it had made: {', '.join(removed)}"] if removed else []
    if left:
        parts.append(f"could not remove {'; '.join(left)}")
    return "; ".join(parts)
