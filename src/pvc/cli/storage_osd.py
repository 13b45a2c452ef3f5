"""``pvc storage osd``: list, add, replace, refresh and remove OSDs, mark them in/out, cluster flags.

Adding, replacing, refreshing and removing OSDs and creating the OSD database volume group are tasks
on a node: the API answers 202 with the task, and the command waits for it (``--no-wait`` prints the
task ID instead).
"""

from __future__ import annotations

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import options
from pvc.cli.output import emit_data, emit_lines
from pvc.cli.storage_pool import SERVER_CONFIRMATION, ceph_path, fetch_list, list_format_option
from pvc.cli.storage_views import osd_list_pretty
from pvc.cli.vm_common import emit_reply, run_task, wait_option


@click.group(name="osd")
def storage_osd() -> None:
    """Manage Ceph OSDs (object storage daemons, one per data disk)."""


def create_db_vg(node: str, device: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Turn DEVICE on NODE into the volume group that holds OSD databases (a task)."""
    cli = options()
    client = cli.client()
    confirm(
        f"Destroy all data on {node}:{device} and create the OSD database volume group on it", confirm_flag
    )
    reply = client.post(ceph_path("osddb"), params={"node": node, "device": device})
    run_task(cli, client, reply, wait_flag)


@storage_osd.command(name="create-db-vg")
@click.argument("node")
@click.argument("device")
@wait_option
@yes_option
def storage_osd_create_db_vg(node: str, device: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Create the OSD database volume group on DEVICE of NODE (a fast disk for OSD metadata)."""
    create_db_vg(node, device, wait_flag, confirm_flag)


@storage_osd.command(name="add")
@click.argument("node")
@click.argument("device")
@click.option(
    "-w", "--weight", "weight", type=float, default=1.0, show_default=True, help="CRUSH weight of the OSD."
)
@click.option(
    "-r",
    "--ext-db-ratio",
    "ext_db_ratio",
    type=float,
    default=None,
    help="Put the OSD database on the database volume group, sized as this fraction of the OSD.",
)
@click.option(
    "-s",
    "--ext-db-size",
    "ext_db_size",
    default=None,
    help="Put the OSD database on the database volume group with this size (e.g. 20G).",
)
@click.option(
    "-c", "--osd-count", "osd_count", type=int, default=None, help="Split DEVICE into this many OSDs."
)
@wait_option
@yes_option
def storage_osd_add(
    node: str,
    device: str,
    weight: float,
    ext_db_ratio: float | None,
    ext_db_size: str | None,
    osd_count: int | None,
    wait_flag: bool,
    confirm_flag: bool,
) -> None:
    """Create a new OSD on DEVICE (e.g. /dev/sdb) of NODE, destroying the data on it."""
    cli = options()
    client = cli.client()
    confirm(f"Destroy all data on {node}:{device} and create a new OSD on it", confirm_flag)
    params = {
        "node": node,
        "device": device,
        "weight": weight,
        "ext_db_ratio": ext_db_ratio,
        "ext_db_size": ext_db_size,
        "osd_count": osd_count,
    }
    run_task(cli, client, client.post(ceph_path("osd"), params=params), wait_flag)


@storage_osd.command(name="replace")
@click.argument("osdid")
@click.argument("new_device")
@click.option(
    "-o", "--old-device", "old_device", default=None, help="The OSD's current device, if it has gone."
)
@click.option("-w", "--weight", "weight", default=None, help="CRUSH weight [default: the old OSD's].")
@click.option(
    "-r",
    "--ext-db-ratio",
    "ext_db_ratio",
    default=None,
    help="Database size as a fraction of the OSD [default: as the old OSD].",
)
@click.option(
    "-s",
    "--ext-db-size",
    "ext_db_size",
    default=None,
    help="Database size (e.g. 20G) [default: as the old OSD].",
)
@wait_option
@yes_option
def storage_osd_replace(
    osdid: str,
    new_device: str,
    old_device: str | None,
    weight: str | None,
    ext_db_ratio: str | None,
    ext_db_size: str | None,
    wait_flag: bool,
    confirm_flag: bool,
) -> None:
    """Replace OSD OSDID with a new one on NEW_DEVICE of the same node, destroying the data on it."""
    cli = options()
    client = cli.client()
    confirm(f"Replace OSD {osdid} with a new OSD on {new_device}, destroying all data on it", confirm_flag)
    params = {
        "new_device": new_device,
        **SERVER_CONFIRMATION,
        "old_device": old_device,
        "weight": weight,
        "ext_db_ratio": ext_db_ratio,
        "ext_db_size": ext_db_size,
    }
    run_task(cli, client, client.post(ceph_path("osd", osdid), params=params), wait_flag)


@storage_osd.command(name="refresh")
@click.argument("osdid")
@click.argument("device")
@wait_option
@yes_option
def storage_osd_refresh(osdid: str, device: str, wait_flag: bool, confirm_flag: bool) -> None:
    """Re-activate existing OSD OSDID from DEVICE (e.g. after reinstalling its node)."""
    cli = options()
    client = cli.client()
    confirm(f"Refresh OSD {osdid} from device {device}", confirm_flag)
    run_task(cli, client, client.put(ceph_path("osd", osdid), params={"device": device}), wait_flag)


@storage_osd.command(name="remove")
@click.argument("osdid")
@click.option(
    "-f",
    "--force",
    "force_flag",
    is_flag=True,
    default=False,
    help="Carry on past errors (e.g. a device that has gone).",
)
@wait_option
@yes_option
def storage_osd_remove(osdid: str, force_flag: bool, wait_flag: bool, confirm_flag: bool) -> None:
    """Remove OSD OSDID: take it out, stop it and destroy it and its data."""
    cli = options()
    client = cli.client()
    confirm(f"Remove OSD {osdid} and destroy all its data", confirm_flag)
    params = {"force": force_flag, **SERVER_CONFIRMATION}
    run_task(cli, client, client.delete(ceph_path("osd", osdid), params=params), wait_flag)


def _set_state(osdid: str, state: str) -> None:
    cli = options()
    emit_reply(cli, cli.client().post(ceph_path("osd", osdid, "state"), params={"state": state}))


@storage_osd.command(name="in")
@click.argument("osdid")
def storage_osd_in(osdid: str) -> None:
    """Mark OSD OSDID in: it takes data again."""
    _set_state(osdid, "in")


@storage_osd.command(name="out")
@click.argument("osdid")
def storage_osd_out(osdid: str) -> None:
    """Mark OSD OSDID out: its data moves to other OSDs."""
    _set_state(osdid, "out")


def _option(osd_property: str, action: str) -> None:
    cli = options()
    params = {"option": osd_property, "action": action}
    emit_reply(cli, cli.client().post(ceph_path("option"), params=params))


@storage_osd.command(name="set")
@click.argument("osd_property")
def storage_osd_set(osd_property: str) -> None:
    """Set the cluster-wide OSD flag OSD_PROPERTY (noout, noup, nodown, norebalance, noscrub...)."""
    _option(osd_property, "set")


@storage_osd.command(name="unset")
@click.argument("osd_property")
def storage_osd_unset(osd_property: str) -> None:
    """Clear the cluster-wide OSD flag OSD_PROPERTY."""
    _option(osd_property, "unset")


@storage_osd.command(name="list")
@click.argument("limit", required=False, default=None)
@list_format_option
def storage_osd_list(limit: str | None, output_format: str) -> None:
    """List OSDs, optionally only those whose ID matches LIMIT."""
    osds = fetch_list("osd", {"limit": limit})
    if output_format == "raw":
        emit_lines(osd.get("id") for osd in osds)
        return
    emit_data(osds, output_format, osd_list_pretty)
