"""``pvc provisioner ova``: OVA appliances (list, upload, remove)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import RenderableType
from rich.text import Text

from pvc.cli.confirm import yes_option
from pvc.cli.context import CliError, options
from pvc.cli.network import fetch_list
from pvc.cli.output import format_option, record_table
from pvc.cli.progress import upload_progress
from pvc.cli.provisioner import emit_list, provisioner, remove
from pvc.cli.vm_common import emit_reply
from pvc.client.http import segment

OVA_COLUMNS = [
    ("Name", "name"),
    ("Disks", lambda o: " ".join(v.get("disk_id", "") for v in o.get("volumes") or []) or "-"),
    (
        "Volumes",
        lambda o: " ".join(f"{v.get('pool')}/{v.get('volume_name')}" for v in o.get("volumes") or []) or "-",
    ),
    ("Size (GB)", lambda o: " ".join(str(v.get("disk_size_gb")) for v in o.get("volumes") or []) or "-"),
]


def ova_list_pretty(items: Any) -> RenderableType:
    return record_table(items, OVA_COLUMNS, "No OVAs") if items else Text("No OVAs")


@provisioner.group(name="ova")
def ova() -> None:
    """Manage OVA appliances: each disk in a volume, a system template and a profile of its name."""


@ova.command(name="list")
@click.argument("limit", required=False, default=None)
@format_option("pretty", "raw", "json", "json-pretty")
def ova_list(limit: str | None, output_format: str) -> None:
    """List the OVAs (LIMIT: a regular expression on names)."""
    emit_list(fetch_list("/provisioner/ova", {"limit": limit}), output_format, ova_list_pretty)


@ova.command(name="remove")
@click.argument("name")
@yes_option
def ova_remove(name: str, confirm_flag: bool) -> None:
    """Remove OVA NAME with its volumes, its profile and its system template."""
    remove(f"/provisioner/ova/{segment(name)}", f"Remove OVA {name} and its volumes", confirm_flag)


@ova.command(name="upload")
@click.argument("name")
@click.argument("filename")
@click.option("-p", "--pool", "pool", required=True, help="The pool the OVA's disks are written into.")
def ova_upload(name: str, filename: str, pool: str) -> None:
    """Upload the OVA file FILENAME as NAME: its disks into volumes of POOL, and a profile NAME."""
    path = Path(filename)
    if not path.is_file():
        raise CliError(f"{filename} is not a file")
    cli = options()
    client = cli.client()
    size = path.stat().st_size
    progress, advance = upload_progress(cli, path.name, size)
    with progress:
        params = {"pool": pool, "ova_size": size}
        reply = client.upload(f"/provisioner/ova/{segment(name)}", path, params, on_read=advance)
    emit_reply(cli, reply)
