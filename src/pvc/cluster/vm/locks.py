"""Freeing the RBD locks of a stopped VM's disks (``POST /vm/{vm}/locks``), as a task.

A VM whose node died can leave locks on its RBD volumes; they are normally cleared
when the VM next starts (see :mod:`pvc.node.vm_disks`), but an operator may free them
by hand, e.g. when a start was refused because a dead holder still seemed alive. The
API refuses while the VM is meant to run (its locks are in use) and queues
``vm.flush_locks`` on the primary coordinator, whose task worker breaks every lock on
the VM's RBD disks through the node's Ceph client.
"""

from __future__ import annotations

from typing import Any

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext, need_storage
from pvc.cluster.vm.queries import resolve, task_domain
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import rbd_volumes
from pvc.state.states import VM_RUNNING
from pvc.state.vms import VmPlacement, read_vm
from pvc.storage import disk_locks
from pvc.tasks import TaskError, task_type


def _in_use(placement: VmPlacement) -> bool:
    return placement.state in VM_RUNNING or bool(placement.running_on)


def submit_flush(cluster: Cluster, vm: str) -> tasks.TaskRecord:
    """Queue ``vm.flush_locks`` for VM ``vm`` on the primary coordinator.

    NotFoundError (404) for an unknown VM; ClusterError (400) when it is running or
    meant to run; Conflict (409) without a primary coordinator.
    """
    record = resolve(cluster, vm)
    placement = record.placement
    if _in_use(placement):
        where = f" on node {placement.running_on}" if placement.running_on else ""
        raise ClusterError(
            f"VM '{record.meta.name}' is running{where} (state {placement.state}): "
            "its disk locks are in use; stop it before freeing them"
        )
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to free the locks")
    return task_actions.submit(cluster, flush_locks, node, {"domain": record.uuid})


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    domain = task_domain(args)
    return {"domain": domain}


def _count(number: int) -> str:
    return f"{number} lock" if number == 1 else f"{number} locks"


@task_type("vm.flush_locks", validate=_check_args)
def flush_locks(ctx: NodeTaskContext, *, domain: str) -> dict[str, Any]:
    """Break every lock on the RBD disks of the stopped VM ``domain`` (a UUID)."""
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    name = record.meta.name
    if _in_use(record.placement):
        raise TaskError(f"VM {name} is running (state {record.placement.state}); no lock was freed")
    try:
        disks = rbd_volumes(record.xml)
    except DomainXMLError as error:
        raise TaskError(f"VM {name}: {error}") from None
    if not disks:
        message = f"VM {name} has no RBD disks; no locks to free"
        ctx.progress(1, 1, message)
        return {"message": message, "disks": {}}
    access = need_storage(ctx)
    freed: dict[str, int] = {}
    failed: dict[str, str] = {}
    for index, (pool, volume) in enumerate(disks):
        ctx.progress(index, len(disks), f"Freeing the locks of {pool}/{volume}")
        try:
            with mapped_errors(access):
                freed[f"{pool}/{volume}"] = disk_locks.flush(access.client(), pool, volume)
        except ClusterError as error:
            failed[f"{pool}/{volume}"] = str(error)
    parts = [f"{disk}: {_count(number)}" for disk, number in freed.items()]
    parts += [f"{disk}: failed ({reason})" for disk, reason in failed.items()]
    message = f"Freed the locks of VM {name}: {'; '.join(parts)}"
    if failed:
        raise TaskError(message)
    ctx.progress(len(disks), len(disks), message)
    return {"message": message, "disks": freed}
