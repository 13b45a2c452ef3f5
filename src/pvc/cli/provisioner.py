"""``pvc provisioner template``: system, network and storage templates."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import options
from pvc.cli.network import fetch_list
from pvc.cli.output import emit_data, emit_lines, format_option, record_table
from pvc.cli.vm_common import emit_reply
from pvc.client.http import segment

list_format_option = format_option("pretty", "raw", "json", "json-pretty")


def template_path(kind: str, *parts: str) -> str:
    return "/".join([f"/provisioner/template/{kind}", *(segment(part) for part in parts)])


def remove(path: str, question: str, confirm_flag: bool) -> None:
    """Delete ``path`` once the user confirms ``question`` (or ``--yes`` was given)."""
    cli = options()
    confirm(question, confirm_flag)
    emit_reply(cli, cli.client().delete(path))


def emit_list(items: list[dict[str, Any]], output_format: str, pretty) -> None:
    if output_format == "raw":
        emit_lines(item.get("name") for item in items)
    else:
        emit_data(items, output_format, pretty)


@click.group(name="provisioner")
def provisioner() -> None:
    """Manage the VM provisioner: templates, userdata, scripts and profiles."""


@provisioner.group(name="template")
def template() -> None:
    """Manage provisioner templates."""


# -- system ---------------------------------------------------------------------------------

SYSTEM_COLUMNS = [
    ("Name", "name"),
    ("vCPUs", "vcpu_count"),
    ("vRAM MiB", "vram_mb"),
    ("Serial", "serial"),
    ("VNC", "vnc"),
    ("VNC bind", "vnc_bind"),
    ("Node limit", "node_limit"),
    ("Selector", "node_selector"),
    ("Autostart", "node_autostart"),
    ("Migration", "migration_method"),
    ("Max downtime", "migration_max_downtime"),
]


def system_list_pretty(items: Any) -> RenderableType:
    return record_table(items, SYSTEM_COLUMNS, "No system templates")


@template.group(name="system")
def system() -> None:
    """Manage system templates (vCPUs, memory, consoles, placement)."""


def _system_options(add: bool):
    def decorate(func):
        selector = click.Choice(["mem", "memprov", "vcpus", "vms", "load", "none"])
        decorators = [
            click.option("-u", "--vcpus", "vcpus", type=int, required=add, help="Number of vCPUs."),
            click.option("-m", "--vram", "vram", type=int, required=add, help="Memory in MiB."),
            click.option(
                "-s/-S",
                "--serial/--no-serial",
                "serial",
                default=False if add else None,
                help="A serial console.",
            ),
            click.option(
                "-n/-N", "--vnc/--no-vnc", "vnc", default=False if add else None, help="A VNC console."
            ),
            click.option("-b", "--vnc-bind", "vnc_bind", default=None, help="Address VNC listens on."),
            click.option(
                "--node-limit", "node_limit", default=None, help="Comma-separated nodes it may run on."
            ),
            click.option(
                "--node-selector",
                "node_selector",
                type=selector,
                default="none" if add else None,
                help="How its node is chosen.",
            ),
            click.option(
                "--node-autostart",
                "node_autostart",
                is_flag=True,
                default=False if add else None,
                help="Start it when its node becomes ready.",
            ),
            click.option(
                "--migration-method",
                "migration_method",
                type=click.Choice(["none", "live", "shutdown"]),
                default=None,
                help="How it is migrated.",
            ),
            click.option(
                "--max-downtime",
                "migration_max_downtime",
                type=int if add else str,
                default=300 if add else None,
                help="Longest pause of a live migration (ms).",
            ),
        ]
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return decorate


@system.command(name="add")
@click.argument("name")
@_system_options(add=True)
def system_add(name: str, **settings: Any) -> None:
    """Add system template NAME."""
    cli = options()
    emit_reply(cli, cli.client().post(template_path("system"), params={"name": name, **settings}))


@system.command(name="modify")
@click.argument("name")
@_system_options(add=False)
def system_modify(name: str, **settings: Any) -> None:
    """Change system template NAME: each option given replaces that setting."""
    cli = options()
    emit_reply(cli, cli.client().put(template_path("system", name), params=settings))


@system.command(name="remove")
@click.argument("name")
@yes_option
def system_remove(name: str, confirm_flag: bool) -> None:
    """Remove system template NAME (not one a profile uses)."""
    remove(template_path("system", name), f"Remove system template {name}", confirm_flag)


@system.command(name="list")
@click.argument("limit", required=False, default=None)
@list_format_option
def system_list(limit: str | None, output_format: str) -> None:
    """List system templates, optionally only those whose name matches LIMIT."""
    emit_list(fetch_list(template_path("system"), {"limit": limit}), output_format, system_list_pretty)


# -- network --------------------------------------------------------------------------------


def network_list_pretty(items: Any) -> RenderableType:
    columns = [
        ("Name", "name"),
        ("MAC template", "mac_template"),
        ("VNIs", lambda t: ", ".join(str(n.get("vni")) for n in t.get("networks") or []) or "-"),
    ]
    return record_table(items, columns, "No network templates")


@template.group(name="network")
def network() -> None:
    """Manage network templates (the client networks of a VM, in order)."""


@network.command(name="add")
@click.argument("name")
@click.option(
    "-m",
    "--mac-template",
    "mac_template",
    default=None,
    help="MAC addresses from {prefix}, {vmid} and {netid}.",
)
def network_add(name: str, mac_template: str | None) -> None:
    """Add network template NAME."""
    cli = options()
    params = {"name": name, "mac_template": mac_template}
    emit_reply(cli, cli.client().post(template_path("network"), params=params))


@network.command(name="remove")
@click.argument("name")
@yes_option
def network_remove(name: str, confirm_flag: bool) -> None:
    """Remove network template NAME (not one a profile uses)."""
    remove(template_path("network", name), f"Remove network template {name}", confirm_flag)


@network.command(name="list")
@click.argument("limit", required=False, default=None)
@list_format_option
def network_list(limit: str | None, output_format: str) -> None:
    """List network templates, optionally only those whose name matches LIMIT."""
    emit_list(fetch_list(template_path("network"), {"limit": limit}), output_format, network_list_pretty)


@network.group(name="vni")
def vni() -> None:
    """Manage the VNIs of a network template."""


@vni.command(name="add")
@click.argument("name")
@click.argument("vni")
@click.option(
    "-d",
    "--permit-duplicate",
    "permit_duplicate",
    is_flag=True,
    default=False,
    help="Allow a VNI the template already has.",
)
def vni_add(name: str, vni: str, permit_duplicate: bool) -> None:
    """Add client network VNI to network template NAME."""
    cli = options()
    reply = cli.client().post(
        template_path("network", name, "net", vni), params={"permit_duplicate": permit_duplicate}
    )
    emit_reply(cli, reply)


@vni.command(name="remove")
@click.argument("name")
@click.argument("vni")
@yes_option
def vni_remove(name: str, vni: str, confirm_flag: bool) -> None:
    """Remove VNI from network template NAME."""
    remove(template_path("network", name, "net", vni), f"Remove VNI {vni} from {name}", confirm_flag)


# -- storage --------------------------------------------------------------------------------


def storage_list_pretty(items: Any) -> RenderableType:
    parts: list[RenderableType] = []
    for item in items if isinstance(items, list) else []:
        columns = [
            ("Disk", "disk_id"),
            ("Pool", "pool"),
            ("Source volume", "source_volume"),
            ("Size GB", "disk_size_gb"),
            ("Filesystem", "filesystem"),
            ("mkfs arguments", lambda d: " ".join(d.get("filesystem_args") or []) or "-"),
            ("Mountpoint", "mountpoint"),
        ]
        parts += [
            Text(str(item.get("name")), style="bold"),
            record_table(item.get("disks"), columns, "no disks"),
            Text(""),
        ]
    return Group(*parts) if parts else Text("No storage templates")


@template.group(name="storage")
def storage() -> None:
    """Manage storage templates (the disks of a VM)."""


@storage.command(name="add")
@click.argument("name")
def storage_add(name: str) -> None:
    """Add storage template NAME."""
    cli = options()
    emit_reply(cli, cli.client().post(template_path("storage"), params={"name": name}))


@storage.command(name="remove")
@click.argument("name")
@yes_option
def storage_remove(name: str, confirm_flag: bool) -> None:
    """Remove storage template NAME (not one a profile uses)."""
    remove(template_path("storage", name), f"Remove storage template {name}", confirm_flag)


@storage.command(name="list")
@click.argument("limit", required=False, default=None)
@list_format_option
def storage_list(limit: str | None, output_format: str) -> None:
    """List storage templates with their disks, optionally only those whose name matches LIMIT."""
    emit_list(fetch_list(template_path("storage"), {"limit": limit}), output_format, storage_list_pretty)


@storage.group(name="disk")
def disk() -> None:
    """Manage the disks of a storage template."""


@disk.command(name="add")
@click.argument("name")
@click.argument("disk")
@click.option("-p", "--pool", "pool", required=True, help="Ceph pool of the disk's volume.")
@click.option("-i", "--source-volume", "source_volume", default=None, help="Volume of the pool to clone.")
@click.option("-s", "--size", "disk_size", type=int, default=None, help="Size in GB (a clone grows to it).")
@click.option("-f", "--filesystem", "filesystem", default=None, help="Filesystem to make on it.")
@click.option("--fsarg", "filesystem_arg", multiple=True, help="Argument of mkfs; repeat for more.")
@click.option("-m", "--mountpoint", "mountpoint", default=None, help="Where the install script mounts it.")
def disk_add(name: str, disk: str, **settings: Any) -> None:
    """Add disk DISK (sda, vdb, ...) to storage template NAME."""
    cli = options()
    settings["filesystem_arg"] = list(settings["filesystem_arg"]) or None
    emit_reply(cli, cli.client().post(template_path("storage", name, "disk", disk), params=settings))


@disk.command(name="remove")
@click.argument("name")
@click.argument("disk")
@yes_option
def disk_remove(name: str, disk: str, confirm_flag: bool) -> None:
    """Remove disk DISK from storage template NAME."""
    remove(template_path("storage", name, "disk", disk), f"Remove disk {disk} from {name}", confirm_flag)
