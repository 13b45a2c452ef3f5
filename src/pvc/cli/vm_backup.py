"""``pvc vm backup``: back VMs up under a backup path, remove backups, restore VMs from them."""

from __future__ import annotations

import click

from pvc.cli.context import options
from pvc.cli.vm_common import cron_option, domain_argument, emit_reply, run_scheduled, vm_path, wait_option


@click.group(name="backup")
def vm_backup() -> None:
    """Back up VMs to files on the primary, and restore them."""


@vm_backup.command(name="create")
@domain_argument
@click.argument("backup_path")
@click.option("-i", "--incremental", "incremental_parent", help="The datestring of a backup to build on.")
@click.option(
    "-r",
    "--retain-snapshot",
    "retain_snapshot",
    is_flag=True,
    default=False,
    help="Keep the backup's snapshot.",
)
def vm_backup_create(
    domain: str, backup_path: str, incremental_parent: str | None, retain_snapshot: bool
) -> None:
    """Back VM DOMAIN up under BACKUP_PATH (one of the cluster's backup.paths).

    An incremental backup needs its parent's snapshot, kept with --retain-snapshot.
    """
    cli = options()
    params = {"backup_path": backup_path, "retain_snapshot": retain_snapshot}
    if incremental_parent:
        params["incremental_parent"] = incremental_parent
    emit_reply(cli, cli.client().post(vm_path(domain, "backup"), params=params), 200, 202)


@vm_backup.command(name="remove")
@domain_argument
@click.argument("backup_datestring")
@click.argument("backup_path")
def vm_backup_remove(domain: str, backup_datestring: str, backup_path: str) -> None:
    """Remove backup BACKUP_DATESTRING of VM DOMAIN from BACKUP_PATH."""
    cli = options()
    params = {"backup_path": backup_path, "backup_datestring": backup_datestring}
    emit_reply(cli, cli.client().delete(vm_path(domain, "backup"), params=params), 200, 202)


@vm_backup.command(name="restore")
@domain_argument
@click.argument("backup_datestring")
@click.argument("backup_path")
@click.option(
    "-r/-R",
    "--retain-snapshot/--remove-snapshot",
    "retain_snapshot",
    default=True,
    show_default=True,
    help="Keep the restored snapshots as VM snapshots, or remove them.",
)
def vm_backup_restore(domain: str, backup_datestring: str, backup_path: str, retain_snapshot: bool) -> None:
    """Restore VM DOMAIN (which must not exist) from backup BACKUP_DATESTRING in BACKUP_PATH."""
    cli = options()
    params = {
        "backup_path": backup_path,
        "backup_datestring": backup_datestring,
        "retain_snapshot": retain_snapshot,
    }
    emit_reply(cli, cli.client().post(vm_path(domain, "restore"), params=params), 200, 202)


@click.command(name="autobackup")
@click.option("--email-report", "email_report", help="Mail the report to these addresses (comma-separated).")
@click.option("--force-full", "force_full", is_flag=True, default=False, help="Make every backup a full one.")
@wait_option
@cron_option
def vm_autobackup(email_report: str | None, force_full: bool, wait_flag: bool, cron_flag: bool) -> None:
    """Back up every VM with an autobackup tag now, as configured in backup.autobackup:
    full or incremental by the rotation, old backups removed by the retention."""
    params: dict[str, object] = {"force_full": force_full}
    if email_report:
        params["email_recipients"] = email_report
    cli = options()
    run_scheduled(cli, cli.client(), "/vm/autobackup", params, wait_flag, cron_flag)
