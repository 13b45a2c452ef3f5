"""Asking for a VM from a profile (``POST /provisioner/create``): the plan is resolved from
the database, checked against the cluster, and queued as ``provisioner.create`` on the
primary coordinator (see :mod:`pvc.cluster.provisioner.create`)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pvc import tasks
from pvc.cluster.errors import ClusterError, Conflict
from pvc.cluster.node.queries import running_primary
from pvc.cluster.provisioner.create import check_cluster, create_vm
from pvc.cluster.provisioner.plan import resolve
from pvc.cluster.session import Cluster
from pvc.cluster.storage.queries import pool_names
from pvc.cluster.tasks import actions as task_actions
from pvc.config.provisioner import ProvisionerSection
from pvc.db.engine import Database

#: The most a create task's arguments (the plan, with the script's text) may take: its task
#: record is one ZooKeeper znode (at most 1 MiB, with the result and its log).
MAX_TASK_ARGUMENTS = 512 * 1024


def submit(
    cluster: Cluster,
    database: Database,
    settings: ProvisionerSection,
    *,
    disk_auth: tuple[str, str] | None,
    name: str,
    profile: str,
    define_vm: bool = True,
    start_vm: bool = True,
    arguments: Sequence[str] = (),
) -> tasks.TaskRecord:
    """Queue the creation of VM ``name`` from ``profile`` on the primary coordinator.

    NotFoundError (404) for an unknown profile; ClusterError (400) for a plan the cluster
    cannot take; Conflict (409) without a running primary.
    """
    with database.session() as session:
        plan = resolve(session, name, profile, arguments)
    check_cluster(cluster, plan["vm_data"])
    known = set(pool_names(cluster))
    for volume in plan["vm_data"]["volumes"]:
        if volume["pool"] not in known:
            raise ClusterError(f"disk {volume['disk_id']}: pool '{volume['pool']}' does not exist")
    node = running_primary(cluster)
    if node is None:
        raise Conflict("No primary coordinator is running to create the VM")
    args = {
        "plan": plan,
        "define_vm": bool(define_vm),
        "start_vm": bool(start_vm) and bool(define_vm),
        "domain_type": settings.domain_type,
        "hook_timeout": settings.hook_timeout,
        "debootstrap": {
            "mirrors": list(settings.debootstrap_mirrors),
            "timeout": settings.debootstrap_timeout,
            "work_dir": settings.work_dir,
        },
        "disk_auth": list(disk_auth) if disk_auth else None,
    }
    size = len(json.dumps(args).encode())
    if size > MAX_TASK_ARGUMENTS:
        raise ClusterError(
            f"Profile '{profile}' cannot be queued: its install script and settings take {size} bytes, "
            f"more than a task may carry ({MAX_TASK_ARGUMENTS}); make the script smaller"
        )
    return task_actions.submit(cluster, create_vm, node, args)
