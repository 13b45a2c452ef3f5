"""``GET /provisioner/status``: the VM creations (``provisioner.create`` tasks) on record."""

from __future__ import annotations

from typing import Any

from pvc import tasks
from pvc.cluster.errors import NotFoundError
from pvc.cluster.provisioner.create import create_vm
from pvc.cluster.session import Cluster
from pvc.cluster.tasks.queries import task_record
from pvc.tasks.views import records


def _view(record: tasks.TaskRecord) -> dict[str, Any]:
    vm_data = (record.args.get("plan") or {}).get("vm_data") or {}
    view = {
        "id": record.id,
        "vm": vm_data.get("name", ""),
        "profile": vm_data.get("profile", ""),
        "run_on": record.run_on,
        "created": record.created,
    }
    return {**view, **tasks.status_view(record)}


def creations(cluster: Cluster) -> list[dict[str, Any]]:
    """Every creation still on record, oldest first: its VM and profile, state and progress."""
    found = [record for record in records(cluster.cache) if record.name == create_vm.name]
    return [_view(record) for record in sorted(found, key=lambda r: (r.created, r.id))]


def creation(cluster: Cluster, task_id: str) -> dict[str, Any]:
    """One creation; NotFoundError for an unknown task or one that creates no VM."""
    record = task_record(cluster, task_id)
    if record.name != create_vm.name:
        raise NotFoundError(f"Task '{task_id}' is not a VM creation")
    return _view(record)
