"""The hold a promotion keeps on its VM while it hands the VM over to another cluster.

From the moment the VM is shut down here until the destination has taken it over, the VM is
in state ``mirror`` with ``held_by`` naming the promotion's task: no state change, forced or
not, and no take-over touches it meanwhile (see :func:`pvc.cluster.vm.actions.check_changeable`).
The promotion ends the hold in every outcome; a promotion whose worker was lost has it ended
by :func:`sweep_lost_hold` (the VM is left stopped here).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pvc import tasks
from pvc.cluster.session import Cluster
from pvc.cluster.tasks.services import NodeServices
from pvc.cluster.vm import actions
from pvc.state.states import VM_RUNNING, VMState
from pvc.state.vms import VmPlacement, VmRecord, read_vm
from pvc.tasks import TaskError


def hold(cluster: Cluster, record: VmRecord, task_id: str) -> None:
    """Hold the stopped VM for task ``task_id``. TaskError, and nothing held, if it was
    started again meanwhile or another task holds it."""
    vm = record.meta.name

    def held(placement: VmPlacement) -> VmPlacement:
        if placement.held_by:
            raise TaskError(f"VM {vm} is being handed over by task {placement.held_by} already")
        if placement.state in VM_RUNNING or placement.running_on:
            raise TaskError(f"VM {vm} was started again during its promotion; nothing was handed over")
        return replace(placement, state=VMState.MIRROR, held_by=task_id)

    actions.change_placement(cluster, record.uuid, held)


def check_held(cluster: Cluster, record: VmRecord, task_id: str) -> None:
    """TaskError unless task ``task_id`` still holds the VM and it runs nowhere."""
    current = read_vm(cluster.store.get, record.uuid)
    placement = current.placement if current else None
    if placement is None or placement.held_by != task_id or placement.running_on:
        raise TaskError(f"VM {record.meta.name} is no longer held by its promotion; nothing was handed over")


def release(cluster: Cluster, record: VmRecord, task_id: str, state: str) -> None:
    """End task ``task_id``'s hold, leaving the VM in ``state`` (nothing if it holds none)."""

    def released(placement: VmPlacement) -> VmPlacement | None:
        if placement.held_by != task_id:
            return None
        return replace(placement, state=state, held_by="")

    actions.change_placement(cluster, record.uuid, released)


def sweep_lost_hold(services: Any, run: tasks.TaskRecord) -> str | None:
    """After a promotion whose worker was lost: end its hold, the VM left stopped here (the
    destination may or may not have taken it over: check there before starting either)."""
    cluster = services.cluster if isinstance(services, NodeServices) else None
    if cluster is None:
        return "its hold on the VM was not checked: this node has no view of the cluster"
    record = read_vm(cluster.store.get, str(run.args.get("domain", "")))
    if record is None or record.placement.held_by != run.id:
        return None
    release(cluster, record, run.id, VMState.STOP)
    return (
        f"VM {record.meta.name} is stopped here and no longer held: check whether the destination "
        "took it over before starting it on either cluster"
    )
