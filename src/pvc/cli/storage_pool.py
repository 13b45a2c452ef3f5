"""``pvc storage pool``: list, add, resize (PGs) and remove Ceph pools.

It also holds the helpers the other ``pvc storage`` modules share: API paths under ``/storage/ceph``,
the server-side confirmation argument and list fetching.
"""

from __future__ import annotations

from typing import Any

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.output import emit_data, emit_lines, format_option
from pvc.cli.storage_views import pool_list_pretty
from pvc.cli.vm_common import emit_reply
from pvc.client.http import Params, segment
from pvc.storage.tiers import TIERS

# The literal argument the API wants before it destroys pools and OSDs.
SERVER_CONFIRMATION = {"yes-i-really-mean-it": "yes"}
DEFAULT_REPLCFG = "copies=3,mincopies=2"

list_format_option = format_option("pretty", "raw", "json", "json-pretty")


def ceph_path(*parts: object) -> str:
    """The API path ``/storage/ceph/<part>/<part>...`` with each part quoted as one segment."""
    return "/".join(["/storage/ceph", *(segment(part) for part in parts)])


def fetch_list(kind: str, params: Params = None) -> list[dict[str, Any]]:
    """``GET /storage/ceph/<kind>``: the list of objects the API returns."""
    data = options().client().get(ceph_path(kind), params=params).expect(200)
    if data is None:
        return []
    if not isinstance(data, list):
        raise CliError(f"Unexpected reply from the API for {kind} list")
    return [item for item in data if isinstance(item, dict)]


@click.group(name="pool")
def storage_pool() -> None:
    """Manage Ceph pools."""


@storage_pool.command(name="add")
@click.argument("name")
@click.argument("pgs")
@click.option(
    "-t",
    "--tier",
    "tier",
    type=click.Choice(TIERS),
    default="default",
    show_default=True,
    help="Class of OSDs the pool's data goes to (default: any).",
)
@click.option(
    "--replcfg",
    "replcfg",
    default=DEFAULT_REPLCFG,
    show_default=True,
    help="Replication: copies=N (copies kept),mincopies=M (copies needed to accept writes).",
)
def storage_pool_add(name: str, pgs: str, tier: str, replcfg: str) -> None:
    """Add pool NAME with PGS placement groups (a power of two, e.g. 64)."""
    cli = options()
    params = {"pool": name, "pgs": pgs, "replcfg": replcfg, "tier": tier}
    emit_reply(cli, cli.client().post(ceph_path("pool"), params=params))


@storage_pool.command(name="list")
@click.argument("limit", required=False, default=None)
@list_format_option
def storage_pool_list(limit: str | None, output_format: str) -> None:
    """List pools, optionally only those whose name matches LIMIT."""
    pools = fetch_list("pool", {"limit": limit})
    if output_format == "raw":
        emit_lines(pool.get("name") for pool in pools)
        return
    emit_data(pools, output_format, pool_list_pretty)


@storage_pool.command(name="remove")
@click.argument("name")
@yes_option
def storage_pool_remove(name: str, confirm_flag: bool) -> None:
    """Remove pool NAME with all its volumes, snapshots and data."""
    cli = options()
    client = cli.client()
    confirm(f"Remove pool {name} and destroy all its volumes and data", confirm_flag)
    emit_reply(cli, client.delete(ceph_path("pool", name), params=SERVER_CONFIRMATION))


@storage_pool.command(name="set-pgs")
@click.argument("name")
@click.argument("pgs")
@yes_option
def storage_pool_set_pgs(name: str, pgs: str, confirm_flag: bool) -> None:
    """Change the placement group count of pool NAME to PGS (data moves between OSDs)."""
    cli = options()
    client = cli.client()
    confirm(
        f"Change the placement groups of pool {name} to {pgs} (its data will be rebalanced)", confirm_flag
    )
    emit_reply(cli, client.put(ceph_path("pool", name), params={"pgs": pgs}))
