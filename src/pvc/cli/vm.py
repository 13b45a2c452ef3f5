"""``pvc vm``: define, list, inspect, change and remove VMs, read their console logs and tags.

State and placement commands live in :mod:`pvc.cli.vm_state`, device and size edits in
:mod:`pvc.cli.vm_devices`; this module holds the group and adds them to it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.logview import log_options, show_log
from pvc.cli.output import emit_data, emit_lines, format_option
from pvc.cli.vm_backup import vm_autobackup, vm_backup
from pvc.cli.vm_common import domain_argument, emit_reply, fetch_vm, run_task, vm_path
from pvc.cli.vm_devices import RUNNING, decide_restart, vm_memory, vm_network, vm_vcpu, vm_volume
from pvc.cli.vm_mirror import vm_automirror, vm_mirror
from pvc.cli.vm_snapshot import vm_snapshot
from pvc.cli.vm_state import (
    vm_disable,
    vm_migrate,
    vm_move,
    vm_restart,
    vm_shutdown,
    vm_start,
    vm_stop,
    vm_unmigrate,
)
from pvc.cli.vm_views import tags_pretty, vm_info_pretty, vm_list_pretty
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import load

SELECTORS = ("mem", "memprov", "load", "vcpus", "vms", "none")
MIGRATION_METHODS = ("none", "live", "shutdown")
DEFAULT_MAX_DOWNTIME = 300

F = TypeVar("F", bound=Callable[..., Any])


@click.group(name="vm")
def vm() -> None:
    """Manage virtual machines."""


for _command in (
    vm_start,
    vm_restart,
    vm_shutdown,
    vm_stop,
    vm_disable,
    vm_migrate,
    vm_move,
    vm_unmigrate,
    vm_vcpu,
    vm_memory,
    vm_network,
    vm_volume,
    vm_snapshot,
    vm_backup,
    vm_mirror,
    vm_autobackup,
    vm_automirror,
):
    vm.add_command(_command)


def _check_xml(text: str, source: str) -> None:
    """Refuse a document that is not domain XML before sending it."""
    try:
        load(text)
    except DomainXMLError as exc:
        raise CliError(f"{source}: {exc}") from exc


limit_option = click.option(
    "-l",
    "--limit",
    "node_limit",
    default=None,
    help="Comma-separated nodes the VM may run on [default: any].",
)


def autostart_option(default: bool | None) -> Callable[[F], F]:
    """``-a/--autostart | -A/--no-autostart`` with this default (None: leave unchanged)."""
    return click.option(
        "-a/-A",
        "--autostart/--no-autostart",
        "node_autostart",
        default=default,
        help="Start the VM again when its node is ready after a flush.",
    )


@vm.command(name="define")
@click.argument("vmconfig", type=click.File("r"))
@click.option(
    "-t", "--target", "target_node", default=None, help="Node to put the VM on [default: chosen by selector]."
)
@limit_option
@click.option(
    "-s",
    "--node-selector",
    "node_selector",
    type=click.Choice(SELECTORS),
    default="none",
    show_default=True,
    help="How to choose the VM's node (none: the cluster's default).",
)
@autostart_option(False)
@click.option(
    "-m",
    "--method",
    "migration_method",
    type=click.Choice(MIGRATION_METHODS),
    default="none",
    show_default=True,
    help="How to migrate the VM (none: the cluster's default).",
)
@click.option(
    "-d",
    "--max-downtime",
    "migration_max_downtime",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_DOWNTIME,
    show_default=True,
    help="Most downtime allowed at the end of a live migration, in ms.",
)
@click.option("-g", "--tag", "user_tags", multiple=True, help="A tag for the VM (may be repeated).")
@click.option(
    "-G", "--protected-tag", "protected_tags", multiple=True, help="A protected tag (may be repeated)."
)
def vm_define(
    vmconfig: IO[str],
    target_node: str | None,
    node_limit: str | None,
    node_selector: str,
    node_autostart: bool,
    migration_method: str,
    migration_max_downtime: int,
    user_tags: tuple[str, ...],
    protected_tags: tuple[str, ...],
) -> None:
    """Define a new VM from the libvirt domain XML in VMCONFIG ('-' reads stdin)."""
    cli = options()
    text = vmconfig.read()
    _check_xml(text, vmconfig.name)
    params = {
        "node": target_node,
        "limit": node_limit,
        "selector": node_selector,
        "autostart": node_autostart,
        "migration_method": migration_method,
        "migration_max_downtime": migration_max_downtime,
        "user_tags": user_tags or None,
        "protected_tags": protected_tags or None,
    }
    emit_reply(cli, cli.client().post("/vm", params=params, data={"xml": text}))


@vm.command(name="list")
@click.argument("limit", required=False, default=None)
@click.option("-t", "--target", "target_node", default=None, help="Only VMs on this node.")
@click.option("-s", "--state", "target_state", default=None, help="Only VMs in this state.")
@click.option("-g", "--tag", "target_tag", default=None, help="Only VMs with this tag.")
@click.option(
    "-n",
    "--negate",
    "negate_flag",
    is_flag=True,
    default=False,
    help="Show the VMs the filters do not match.",
)
@format_option("pretty", "raw", "json", "json-pretty")
def vm_list(
    limit: str | None,
    target_node: str | None,
    target_state: str | None,
    target_tag: str | None,
    negate_flag: bool,
    output_format: str,
) -> None:
    """List VMs, optionally only those whose name matches LIMIT (a regular expression)."""
    params = {
        "limit": limit,
        "node": target_node,
        "state": target_state,
        "tag": target_tag,
        "negate": True if negate_flag else None,
    }
    vms = options().client().get("/vm", params=params).expect(200)
    if output_format == "raw":
        emit_lines(item.get("name") for item in vms or [] if isinstance(item, dict))
        return
    emit_data(vms, output_format, vm_list_pretty)


@vm.command(name="info")
@domain_argument
@format_option("pretty", "long", "json", "json-pretty")
def vm_info(domain: str, output_format: str) -> None:
    """Show details of VM DOMAIN; '-f long' adds machine details and statistics."""
    item = fetch_vm(options().client(), domain)
    emit_data(item, output_format, lambda data: vm_info_pretty(data, long=output_format == "long"))


@vm.command(name="dump")
@domain_argument
@click.option(
    "-f",
    "--file",
    "filename",
    type=click.File("w"),
    default=None,
    help="Write the XML to this file instead of stdout.",
)
def vm_dump(domain: str, filename: IO[str] | None) -> None:
    """Print the libvirt domain XML of VM DOMAIN."""
    cli = options()
    xml = str(fetch_vm(cli.client(), domain).get("xml") or "")
    if filename is None:
        cli.emit(xml.rstrip("\n"))
        return
    filename.write(xml if xml.endswith("\n") else f"{xml}\n")
    cli.note(f"Wrote the XML of VM {domain} to {filename.name}")


def _show_diff(old: str, new: str, domain: str) -> None:
    cli = options()
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{domain} (current)", f"{domain} (new)", lineterm=""
    )
    for line in lines:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        cli.emit(click.style(line, fg=style) if style else line)


@vm.command(name="modify")
@domain_argument
@click.argument("cfgfile", type=click.File("r"), required=False, default=None)
@click.option(
    "-e", "--editor", "editor_flag", is_flag=True, default=None, help="Edit the current XML in $EDITOR."
)
@click.option(
    "-r",
    "--restart",
    "restart_flag",
    is_flag=True,
    default=None,
    help="Restart the VM to apply the change [default: ask when it is running].",
)
@click.option(
    "-d",
    "--confirm-diff",
    "confirm_diff_flag",
    is_flag=True,
    default=False,
    help="Write without showing the diff and asking.",
)
@click.option(
    "-c",
    "--confirm-restart",
    "confirm_restart_flag",
    is_flag=True,
    default=False,
    help="Restart without asking (with -r).",
)
@yes_option
def vm_modify(
    domain: str,
    cfgfile: IO[str] | None,
    editor_flag: bool | None,
    restart_flag: bool | None,
    confirm_diff_flag: bool,
    confirm_restart_flag: bool,
    confirm_flag: bool,
) -> None:
    """Replace the domain XML of VM DOMAIN with CFGFILE ('-' reads stdin) or an edited copy (-e)."""
    if (cfgfile is None) == (not editor_flag):
        raise click.UsageError("Give either CFGFILE or -e/--editor.")
    cli = options()
    client = cli.client()
    vm = fetch_vm(client, domain)
    current = str(vm.get("xml") or "")
    if editor_flag:
        edited = click.edit(text=current, extension=".xml", require_save=True)
        if edited is None:
            cli.emit(f"No changes to VM {domain}.")
            return
        new, source = edited, "the edited XML"
    else:
        assert cfgfile is not None
        new, source = cfgfile.read(), cfgfile.name
    _check_xml(new, source)
    if new.strip() == current.strip():
        cli.emit(f"No changes to VM {domain}.")
        return
    if not (confirm_diff_flag or confirm_flag or cli.unsafe):
        _show_diff(current, new, domain)
        confirm(f"Write these changes to VM {domain}", False)
    restart = decide_restart(cli, domain, vm, restart_flag, confirm_restart_flag or confirm_flag)
    reply = client.put(vm_path(domain), params={"restart": restart}, data={"xml": new})
    emit_reply(cli, reply)
    if not restart and vm.get("state") == RUNNING:
        cli.note(f"The change takes effect when VM {domain} next restarts.")


@vm.command(name="meta")
@domain_argument
@limit_option
@click.option(
    "-s",
    "--node-selector",
    "node_selector",
    type=click.Choice(SELECTORS),
    default=None,
    help="How to choose the VM's node (none: the cluster's default).",
)
@autostart_option(None)
@click.option(
    "-m",
    "--method",
    "migration_method",
    type=click.Choice(MIGRATION_METHODS),
    default="none",
    show_default=True,
    help="How to migrate the VM (none: the cluster's default); always sent, as PVC v1 does.",
)
@click.option(
    "-d",
    "--max-downtime",
    "migration_max_downtime",
    type=click.IntRange(min=1),
    default=None,
    help="Most downtime allowed at the end of a live migration, in ms.",
)
@click.option("-p", "--profile", "provisioner_profile", default=None, help="Provisioner profile of the VM.")
def vm_meta(
    domain: str,
    node_limit: str | None,
    node_selector: str | None,
    node_autostart: bool | None,
    migration_method: str,
    migration_max_downtime: int | None,
    provisioner_profile: str | None,
) -> None:
    """Change the PVC metadata of VM DOMAIN: the options given, and the migration method, which
    -m sets and which is otherwise reset to none (the cluster's default), as PVC v1 does."""
    params: dict[str, Any] = {
        "limit": node_limit,
        "selector": node_selector,
        "autostart": node_autostart,
        "migration_method": migration_method,
        "migration_max_downtime": migration_max_downtime,
        "profile": provisioner_profile,
    }
    cli = options()
    emit_reply(cli, cli.client().post(vm_path(domain, "meta"), params=params))


@vm.command(name="rename")
@domain_argument
@click.argument("new_name")
@yes_option
def vm_rename(domain: str, new_name: str, confirm_flag: bool) -> None:
    """Rename VM DOMAIN (stopped) to NEW_NAME."""
    cli = options()
    client = cli.client()
    confirm(f"Rename VM {domain} to {new_name}", confirm_flag)
    emit_reply(cli, client.post(vm_path(domain, "rename"), params={"new_name": new_name}))


def _delete(domain: str, delete_disks: bool, question: str, confirm_flag: bool) -> None:
    cli = options()
    client = cli.client()
    confirm(question, confirm_flag)
    emit_reply(cli, client.delete(vm_path(domain), params={"delete_disks": delete_disks}))


@vm.command(name="undefine")
@domain_argument
@yes_option
def vm_undefine(domain: str, confirm_flag: bool) -> None:
    """Stop VM DOMAIN and remove it from the cluster, keeping its disks."""
    _delete(domain, False, f"Undefine VM {domain} (its disks are kept)", confirm_flag)


@vm.command(name="remove")
@domain_argument
@yes_option
def vm_remove(domain: str, confirm_flag: bool) -> None:
    """Stop VM DOMAIN, remove it from the cluster and delete its disks."""
    _delete(domain, True, f"Remove VM {domain} and delete all its disks", confirm_flag)


@vm.command(name="flush-locks")
@domain_argument
@click.option(
    "--wait/--no-wait",
    "wait_flag",
    default=True,
    show_default=True,
    help="Wait for the task to finish, showing its progress.",
)
def vm_flush_locks(domain: str, wait_flag: bool) -> None:
    """Free the storage locks of VM DOMAIN (stopped) left by a failed node."""
    cli = options()
    client = cli.client()
    run_task(cli, client, client.post(vm_path(domain, "locks")), wait_flag)


@vm.command(name="log")
@domain_argument
@log_options
def vm_log(domain: str, lines: int | None, follow_flag: bool) -> None:
    """Show the serial console log of VM DOMAIN."""
    show_log(vm_path(domain, "console"), lines, follow_flag)


@vm.group(name="tag")
def vm_tag() -> None:
    """Manage the tags of a VM."""


@vm_tag.command(name="get")
@domain_argument
@format_option("pretty", "raw", "json", "json-pretty")
def vm_tag_get(domain: str, output_format: str) -> None:
    """Show the tags of VM DOMAIN."""
    data = options().client().get(vm_path(domain, "tags")).expect(200)
    if output_format == "raw":
        tags = data.get("tags") if isinstance(data, dict) else None
        emit_lines(tag.get("name") for tag in tags or [] if isinstance(tag, dict))
        return
    emit_data(data, output_format, tags_pretty)


def _tag(domain: str, action: str, tag: str, protected: bool) -> None:
    cli = options()
    params = {"action": action, "tag": tag, "protected": protected}
    emit_reply(cli, cli.client().post(vm_path(domain, "tags"), params=params))


@vm_tag.command(name="add")
@domain_argument
@click.argument("tag")
@click.option(
    "-p", "--protected", "protected_flag", is_flag=True, default=False, help="Protect the tag from removal."
)
def vm_tag_add(domain: str, tag: str, protected_flag: bool) -> None:
    """Add TAG to VM DOMAIN."""
    _tag(domain, "add", tag, protected_flag)


@vm_tag.command(name="remove")
@domain_argument
@click.argument("tag")
def vm_tag_remove(domain: str, tag: str) -> None:
    """Remove TAG from VM DOMAIN."""
    _tag(domain, "remove", tag, False)
