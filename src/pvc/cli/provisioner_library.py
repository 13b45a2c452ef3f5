"""``pvc provisioner userdata|script|profile|create|status``."""

from __future__ import annotations

from typing import IO, Any

import click
from rich.console import RenderableType
from rich.text import Text

from pvc.cli.confirm import yes_option
from pvc.cli.context import options
from pvc.cli.network import fetch_list
from pvc.cli.output import emit_data, format_option, record_table
from pvc.cli.provisioner import emit_list, provisioner, remove
from pvc.cli.storage_osd import wait_option
from pvc.cli.vm_common import emit_reply, run_task
from pvc.client.http import segment


def _documents(kind: str, label: str, extension: str) -> click.Group:
    """The commands of userdata or scripts: add, modify, list, show, remove."""
    path = f"/provisioner/{kind}"

    @click.group(name=kind, help=f"Manage provisioner {label}s.")
    def group() -> None:
        pass

    def item_path(name: str) -> str:
        return f"{path}/{segment(name)}"

    def text_of(name: str) -> str:
        item = options().client().get(item_path(name)).expect_one(f"{label.capitalize()} {name}")
        return str(item.get(kind) or "")

    @group.command(name="add", help=f"Add {label} NAME from FILENAME ('-' reads stdin).")
    @click.argument("name")
    @click.argument("filename", type=click.File("r"))
    def add(name: str, filename: IO[str]) -> None:
        cli = options()
        emit_reply(cli, cli.client().post(path, params={"name": name}, data={"data": filename.read()}))

    @group.command(name="modify", help=f"Replace the text of {label} NAME with FILENAME, or edit it (-e).")
    @click.option("-e", "--editor", "editor_flag", is_flag=True, default=None, help="Edit it in $EDITOR.")
    @click.argument("name")
    @click.argument("filename", type=click.File("r"), required=False)
    def modify(name: str, filename: IO[str] | None, editor_flag: bool | None) -> None:
        if (filename is None) == (not editor_flag):
            raise click.UsageError("Give either FILENAME or -e/--editor.")
        cli = options()
        if editor_flag:
            edited = click.edit(text=text_of(name), extension=extension, require_save=True)
            if edited is None:
                cli.emit(f"No changes to {label} {name}.")
                return
            text = edited
        else:
            assert filename is not None
            text = filename.read()
        emit_reply(cli, cli.client().put(item_path(name), data={"data": text}))

    @group.command(name="list", help=f"List {label}s, optionally only those whose name matches LIMIT.")
    @click.argument("limit", required=False, default=None)
    @click.option("-l", "--long", "long_flag", is_flag=True, default=False, help="Show their text too.")
    @format_option("pretty", "raw", "json", "json-pretty")
    def list_(limit: str | None, long_flag: bool, output_format: str) -> None:
        items = fetch_list(path, {"limit": limit})
        columns: list = [("Name", "name")]
        if long_flag:
            columns.append((label.capitalize(), kind))
        else:
            columns.append(("Lines", lambda item: str(len(str(item.get(kind) or "").splitlines()))))
        emit_list(items, output_format, lambda data: record_table(data, columns, f"No {label}s"))

    @group.command(name="show", help=f"Print the text of {label} NAME.")
    @click.argument("name")
    def show(name: str) -> None:
        click.echo(text_of(name), nl=False)

    @group.command(name="remove", help=f"Remove {label} NAME (not one a profile uses).")
    @click.argument("name")
    @yes_option
    def remove_(name: str, confirm_flag: bool) -> None:
        remove(item_path(name), f"Remove {label} {name}", confirm_flag)

    return group


provisioner.add_command(_documents("userdata", "userdata", ".yaml"))
provisioner.add_command(_documents("script", "script", ".py"))


# -- profiles ------------------------------------------------------------------------------------

PROFILE_COLUMNS = [
    ("Name", "name"),
    ("Type", "profile_type"),
    ("System", "system_template"),
    ("Network", "network_template"),
    ("Storage", "storage_template"),
    ("Userdata", "userdata"),
    ("Script", "script"),
    ("OVA", "ova"),
    ("Arguments", lambda p: " ".join(p.get("arguments") or []) or "-"),
]


def profile_list_pretty(items: Any) -> RenderableType:
    return record_table(items, PROFILE_COLUMNS, "No profiles") if items else Text("No profiles")


@provisioner.group(name="profile")
def profile() -> None:
    """Manage provisioner profiles."""


def _references(*names: str):
    """The profile options ``names`` (in that order)."""
    known = {
        "type": click.option(
            "-p",
            "--profile-type",
            "profile_type",
            type=click.Choice(["provisioner", "ova"]),
            default="provisioner",
            help="Provisioner (a script) or ova.",
        ),
        "system": click.option(
            "-s", "--system-template", "system_template", default=None, help="System template."
        ),
        "network": click.option(
            "-n", "--network-template", "network_template", default=None, help="Network template."
        ),
        "storage": click.option(
            "-t", "--storage-template", "storage_template", default=None, help="Storage template."
        ),
        "userdata": click.option("-u", "--userdata", "userdata", default=None, help="Userdata."),
        "script": click.option("-x", "--script", "script", default=None, help="Install script."),
        "script!": click.option("-x", "--script", "script", required=True, help="Install script."),
        "system!": click.option(
            "-s", "--system-template", "system_template", required=True, help="System template."
        ),
        "ova": click.option("-o", "--ova", "ova", default=None, help="OVA (for an ova profile)."),
        "delete": click.option(
            "-d",
            "--delete-script-args",
            "delete_args",
            is_flag=True,
            default=False,
            help="Remove every script argument.",
        ),
        "args": click.option(
            "-a",
            "--script-arg",
            "script_args",
            multiple=True,
            help="Script argument key=value; repeat for more.",
        ),
    }

    def decorate(func):
        for name in reversed(names):
            func = known[name](func)
        return func

    return decorate


@profile.command(name="add")
@click.argument("name")
@_references("type", "system!", "network", "storage", "userdata", "script!", "ova", "args")
def profile_add(name: str, profile_type: str, script_args: tuple[str, ...], **references: Any) -> None:
    """Add profile NAME from a system template and a script (an ova profile also names its OVA)."""
    cli = options()
    params = {"name": name, "profile_type": profile_type, **references, "arg": list(script_args) or None}
    emit_reply(cli, cli.client().post("/provisioner/profile", params=params))


@profile.command(name="modify")
@click.argument("name")
@_references("system", "network", "storage", "userdata", "script", "delete", "args")
def profile_modify(name: str, delete_args: bool, script_args: tuple[str, ...], **references: Any) -> None:
    """Change profile NAME: each option given replaces that setting (-a replaces every argument)."""
    if delete_args and script_args:
        raise click.UsageError("Give either -d/--delete-script-args or -a/--script-arg.")
    cli = options()
    arguments = [""] if delete_args else (list(script_args) or None)
    emit_reply(
        cli,
        cli.client().put(f"/provisioner/profile/{segment(name)}", params={**references, "arg": arguments}),
    )


@profile.command(name="remove")
@click.argument("name")
@yes_option
def profile_remove(name: str, confirm_flag: bool) -> None:
    """Remove profile NAME."""
    remove(f"/provisioner/profile/{segment(name)}", f"Remove profile {name}", confirm_flag)


@profile.command(name="list")
@click.argument("limit", required=False, default=None)
@format_option("pretty", "raw", "json", "json-pretty")
def profile_list(limit: str | None, output_format: str) -> None:
    """List profiles, optionally only those whose name matches LIMIT."""
    emit_list(fetch_list("/provisioner/profile", {"limit": limit}), output_format, profile_list_pretty)


@provisioner.command(name="create")
@click.argument("name")
@click.argument("profile", metavar="PROFILE")
@click.option(
    "-a",
    "--script-arg",
    "script_args",
    multiple=True,
    help="An install-script argument key=value (repeatable; overrides the profile's).",
)
@click.option(
    "-d/-D",
    "--define/--no-define",
    "define_flag",
    default=True,
    show_default=True,
    help="Define the VM (--no-define: only make its volumes and run the script).",
)
@click.option(
    "-s/-S",
    "--start/--no-start",
    "start_flag",
    default=True,
    show_default=True,
    help="Start the VM once defined.",
)
@wait_option
def provisioner_create(
    name: str,
    profile: str,
    script_args: tuple[str, ...],
    define_flag: bool,
    start_flag: bool,
    wait_flag: bool,
) -> None:
    """Create VM NAME from profile PROFILE (a task on the primary; --wait shows its stages)."""
    cli = options()
    client = cli.client()
    params = {
        "name": name,
        "profile": profile,
        "define_vm": str(define_flag).lower(),
        "start_vm": str(start_flag).lower(),
        "arg": list(script_args) or None,
    }
    run_task(cli, client, client.post("/provisioner/create", params=params), wait_flag)


STATUS_COLUMNS = [
    ("Task", "id"),
    ("VM", "vm"),
    ("Profile", "profile"),
    ("Node", "run_on"),
    ("State", "state"),
    ("Progress", lambda t: f"{t.get('current', 0)}/{t.get('total', 0)}"),
    ("Status", "status"),
]


@provisioner.command(name="status")
@click.argument("task_id", required=False, default=None)
@format_option("pretty", "json", "json-pretty")
def provisioner_status(task_id: str | None, output_format: str) -> None:
    """Show the VM creations on record, or the one of task TASK_ID (with its result)."""
    cli = options()
    client = cli.client()
    if task_id is None:
        items = client.get("/provisioner/status").expect(200)
        emit_data(items, output_format, lambda data: record_table(data, STATUS_COLUMNS, "No VM creations"))
        return
    item = client.get(f"/provisioner/status/{segment(task_id)}").expect(200)
    emit_data(item, output_format, lambda data: record_table([data], STATUS_COLUMNS, "No VM creation"))
