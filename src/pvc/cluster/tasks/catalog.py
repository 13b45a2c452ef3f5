"""Every task type of the domain library, for the node daemon's task registry.

A new subsystem that runs work as tasks defines its task types beside its other code
(``@task_type`` in its package) and lists them here.
"""

from __future__ import annotations

from pvc.cluster import backup
from pvc.cluster.provisioner import create as provisioner_create
from pvc.cluster.schedules import autobackup, automirror
from pvc.cluster.storage import benchmark, osd_tasks
from pvc.cluster.vm import backups, devices, locks, mirror_send, mirrors, snapshot_export, snapshot_tasks
from pvc.tasks import TaskType

DOMAIN_TASKS: tuple[TaskType, ...] = (
    backup.backup_to_file,
    devices.device_attach,
    devices.device_detach,
    locks.flush_locks,
    *snapshot_tasks.SNAPSHOT_TASKS,
    *snapshot_export.IMPORT_EXPORT_TASKS,
    *backups.BACKUP_TASKS,
    *mirror_send.SEND_TASKS,
    *mirrors.MIRROR_TASKS,
    *autobackup.AUTOBACKUP_TASKS,
    *automirror.AUTOMIRROR_TASKS,
    *osd_tasks.OSD_TASKS,
    benchmark.run_benchmark,
    provisioner_create.create_vm,
)
