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
from pvc.cluster.errors import ClusterError
from pvc.cluster.storage_access import StorageAccess, mapped_errors
from pvc.cluster.vms import resolve
from pvc.domain_xml import parse as domain_xml
from pvc.domain_xml.errors import DomainXMLError
from pvc.state.cache import ClusterCache
from pvc.state.states import VM_RUNNING
from pvc.state.store import Store
from pvc.state.vms import VmPlacement, read_vm
from pvc.storage import disk_locks
from pvc.tasks import InvalidTaskError, TaskContext, TaskError, task

FLUSH = "vm.flush_locks"


class NoPrimary(ClusterError):
    """No primary coordinator is there to run the task (HTTP 409)."""

    status = 409


def rbd_disks(xml: str) -> list[tuple[str, str]]:
    """``(pool, volume)`` of each RBD disk of a domain XML, in device order, without repeats.

    DomainXMLError if the XML cannot be parsed. Snapshots (``pool/volume@snap``) are
    left out: they are opened read-only and never locked.
    """
    _, summary = domain_xml.parse(xml)
    found: list[tuple[str, str]] = []
    for disk in summary.disks:
        if disk.protocol != "rbd" or "/" not in disk.source:
            continue
        pool, _, volume = disk.source.partition("/")
        if not pool or not volume or "@" in volume:
            continue
        if (pool, volume) not in found:
            found.append((pool, volume))
    return found


def _in_use(placement: VmPlacement) -> bool:
    return placement.state in VM_RUNNING or bool(placement.running_on)


def submit_flush(store: Store, cache: ClusterCache, vm: str) -> tasks.TaskRecord:
    """Queue ``vm.flush_locks`` for VM ``vm`` on the primary coordinator.

    NotFoundError (404) for an unknown VM; ClusterError (400) when it is running or
    meant to run; NoPrimary (409) without a primary coordinator.
    """
    record = resolve(cache, vm)
    placement = record.placement
    if _in_use(placement):
        where = f" on node {placement.running_on}" if placement.running_on else ""
        raise ClusterError(
            f"VM '{record.meta.name}' is running{where} (state {placement.state}): "
            "its disk locks are in use; stop it before freeing them"
        )
    primary = cache.cluster_config().primary_node
    if not primary or cache.node(primary) is None:
        raise NoPrimary("No primary coordinator is running to free the locks")
    try:
        return tasks.submit(store, FLUSH, primary, {"domain": record.uuid})
    except tasks.InvalidTaskError as error:
        raise ClusterError(str(error)) from None


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    domain = args.get("domain")
    if not isinstance(domain, str) or not domain or "/" in domain:
        raise InvalidTaskError("domain must name a VM by UUID")
    return {"domain": domain}


def _storage(ctx: TaskContext) -> StorageAccess:
    try:
        return ctx.service("storage")
    except TaskError:
        raise TaskError(f"node {ctx.run_on} has no Ceph storage configured (storage.ceph_conf)") from None


def _count(number: int) -> str:
    return f"{number} lock" if number == 1 else f"{number} locks"


@task(FLUSH, validate=_check_args)
def flush_locks(ctx: TaskContext, *, domain: str) -> dict[str, Any]:
    """Break every lock on the RBD disks of the stopped VM ``domain`` (a UUID)."""
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    name = record.meta.name
    if _in_use(record.placement):
        raise TaskError(f"VM {name} is running (state {record.placement.state}); no lock was freed")
    try:
        disks = rbd_disks(record.xml)
    except DomainXMLError as error:
        raise TaskError(f"VM {name}: {error}") from None
    if not disks:
        message = f"VM {name} has no RBD disks; no locks to free"
        ctx.progress(1, 1, message)
        return {"message": message, "disks": {}}
    access = _storage(ctx)
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
