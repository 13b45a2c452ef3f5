"""``pvc vm snapshot``: take, list, remove and roll back VM snapshots (tasks)."""

from __future__ import annotations

from typing import Any

import click
from rich.console import RenderableType
from rich.text import Text

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import options
from pvc.cli.output import as_dict, dicts, emit_data, format_option, table, text_or_na
from pvc.cli.vm_common import domain_argument, fetch_vm, run_task, vm_path, wait_option
from pvc.cli.vm_mirror import destination_argument, destination_params, key_option, pool_option


@click.group(name="snapshot")
def vm_snapshot() -> None:
    """Manage the snapshots of a VM: every RBD volume and the XML at one point."""


@vm_snapshot.command(name="create")
@domain_argument
@click.argument("snapshot_name", required=False)
@wait_option
def vm_snapshot_create(domain: str, snapshot_name: str | None, wait_flag: bool) -> None:
    """Snapshot VM DOMAIN as SNAPSHOT_NAME (default: the time, YYYYMMDDhhmmss UTC).

    A running VM with the QEMU guest agent has its filesystems frozen for the snapshot;
    one without is paused for that moment (crash-consistent).
    """
    cli = options()
    client = cli.client()
    params = {"snapshot_name": snapshot_name} if snapshot_name else {}
    run_task(cli, client, client.post(vm_path(domain, "snapshot"), params=params), wait_flag)


@vm_snapshot.command(name="remove")
@domain_argument
@click.argument("snapshot_name")
@wait_option
@yes_option
def vm_snapshot_remove(domain: str, snapshot_name: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Remove snapshot SNAPSHOT_NAME of VM DOMAIN."""
    confirm(f"Remove snapshot {snapshot_name} of VM {domain}", confirm_flag)
    cli = options()
    client = cli.client()
    reply = client.delete(vm_path(domain, "snapshot"), params={"snapshot_name": snapshot_name})
    run_task(cli, client, reply, wait_flag)


@vm_snapshot.command(name="rollback")
@domain_argument
@click.argument("snapshot_name")
@wait_option
@yes_option
def vm_snapshot_rollback(domain: str, snapshot_name: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Return the disks and XML of VM DOMAIN (stopped) to snapshot SNAPSHOT_NAME.

    Everything written to its disks since the snapshot is lost.
    """
    confirm(f"Roll VM {domain} back to snapshot {snapshot_name}, losing every change since", confirm_flag)
    cli = options()
    client = cli.client()
    reply = client.post(vm_path(domain, "snapshot", "rollback"), params={"snapshot_name": snapshot_name})
    run_task(cli, client, reply, wait_flag)


@vm_snapshot.command(name="export")
@domain_argument
@click.argument("snapshot_name")
@click.argument("export_path")
@click.option(
    "-i", "--incremental", "incremental_parent", help="Export only the changes since this snapshot."
)
@wait_option
def vm_snapshot_export(
    domain: str, snapshot_name: str, export_path: str, incremental_parent: str | None, wait_flag: bool
) -> None:
    """Write snapshot SNAPSHOT_NAME of VM DOMAIN under EXPORT_PATH on the primary.

    EXPORT_PATH must be under one of the cluster's backup.paths. With --incremental, the
    parent must have been exported to the same path.
    """
    cli = options()
    client = cli.client()
    params = {"snapshot_name": snapshot_name, "export_path": export_path}
    if incremental_parent:
        params["incremental_parent"] = incremental_parent
    run_task(cli, client, client.post(vm_path(domain, "snapshot", "export"), params=params), wait_flag)


@vm_snapshot.command(name="import")
@domain_argument
@click.argument("snapshot_name")
@click.argument("import_path")
@click.option(
    "-r/-R",
    "--retain-snapshot/--remove-snapshot",
    "retain_snapshot",
    default=True,
    show_default=True,
    help="Keep the imported snapshots as VM snapshots, or remove them.",
)
@wait_option
def vm_snapshot_import(
    domain: str, snapshot_name: str, import_path: str, retain_snapshot: bool, wait_flag: bool
) -> None:
    """Rebuild VM DOMAIN (which must not exist) from its exports under IMPORT_PATH, up to
    snapshot SNAPSHOT_NAME."""
    cli = options()
    client = cli.client()
    params = {"snapshot_name": snapshot_name, "import_path": import_path, "retain_snapshot": retain_snapshot}
    run_task(cli, client, client.post(vm_path(domain, "snapshot", "import"), params=params), wait_flag)


@vm_snapshot.command(name="send")
@domain_argument
@click.argument("snapshot_name")
@destination_argument
@key_option
@pool_option
@click.option("-i", "--incremental", "incremental_parent", help="Send only the changes since this snapshot.")
@wait_option
def vm_snapshot_send(
    domain: str,
    snapshot_name: str,
    destination: str,
    destination_api_key: str | None,
    destination_pool: str | None,
    incremental_parent: str | None,
    wait_flag: bool,
) -> None:
    """Send snapshot SNAPSHOT_NAME of VM DOMAIN to another cluster, where it becomes a mirror.

    DESTINATION is a connection in the store (its key is used unless -k is given) or the
    destination's API URI, like https://host:7370/api/v1.
    """
    params = destination_params(destination, destination_api_key, destination_pool)
    params["snapshot_name"] = snapshot_name
    if incremental_parent:
        params["incremental_parent"] = incremental_parent
    cli = options()
    client = cli.client()
    # the key goes in the form body, not the URL (which servers log)
    run_task(cli, client, client.post(vm_path(domain, "snapshot", "send"), data=params), wait_flag)


def snapshots_pretty(data: Any) -> RenderableType:
    """``vm snapshot list``: name, age, time and volumes of each snapshot, oldest first."""
    snapshots = dicts(as_dict(data).get("snapshots"))
    if not snapshots:
        return Text("No snapshots.")
    view = table("Name", "Age", "Timestamp", "RBD snapshots", "XML changes since")
    for snap in snapshots:
        changed = sum(1 for line in snap.get("xml_diff_lines") or [] if str(line)[:1] in "+-")
        view.add_row(
            text_or_na(snap.get("name")),
            text_or_na(snap.get("age")),
            text_or_na(snap.get("timestamp")),
            "\n".join(str(rbd) for rbd in snap.get("rbd_snapshots") or []),
            f"{changed} line(s)" if changed else "none",
        )
    return view


@vm_snapshot.command(name="list")
@domain_argument
@format_option("pretty", "json", "json-pretty")
def vm_snapshot_list(domain: str, output_format: str) -> None:
    """List the snapshots of VM DOMAIN, oldest first."""
    data = fetch_vm(options().client(), domain)
    if output_format != "pretty":
        data = as_dict(data).get("snapshots") or []
    emit_data(data, output_format, snapshots_pretty)
