"""``pvc connection``: manage the client's store of API connections."""

from __future__ import annotations

import re
from typing import Any

import click
from rich.text import Text

from pvc.cli.context import CliError, options
from pvc.cli.output import NOT_AVAILABLE, emit_data, emit_lines, format_option, health_text, table
from pvc.client import connections
from pvc.client.errors import ApiError, ApiUnreachable, ConnectionStoreError
from pvc.client.http import ApiClient


def mask_key(key: str | None) -> str | None:
    """Hide an API key: every letter and digit becomes ``x`` (dashes and the length stay visible)."""
    if key is None:
        return None
    return re.sub(r"[A-Za-z0-9]", "x", key)


def connection_records(show_keys: bool = False) -> list[dict[str, Any]]:
    """Every stored connection as a flat record (cfgfile entries resolved where readable)."""
    data = connections.load_connections()
    default = connections.get_default_connection()
    records = []
    for name in sorted(data):
        entry = data[name]
        try:
            conn = connections.entry_to_connection(name, entry)
            record = {
                "name": name,
                "description": conn.description,
                "address": conn.host,
                "port": conn.port,
                "scheme": conn.scheme,
                "api_key": conn.api_key if show_keys else mask_key(conn.api_key),
            }
        except ConnectionStoreError:
            record = {
                "name": name,
                "description": str(entry.get("cfgfile", entry.get("description", ""))),
                "address": None,
                "port": None,
                "scheme": None,
                "api_key": None,
            }
        record["default"] = name == default
        records.append(record)
    return records


@click.group(name="connection")
def connection() -> None:
    """Manage API connections of this client (no API calls except for "detail")."""


@connection.command(name="add")
@click.argument("name")
@click.option(
    "-d",
    "--description",
    "description",
    default="N/A",
    show_default=True,
    help="A description of the connection.",
)
@click.option("-a", "--address", "address", required=True, help="API host name or IP address.")
@click.option(
    "-p",
    "--port",
    "port",
    type=int,
    default=connections.DEFAULT_PORT,
    show_default=True,
    help="API TCP port.",
)
@click.option("-k", "--api-key", "api_key", default=None, help="API key (X-Api-Key) of the cluster.")
@click.option("-s/-S", "--ssl/--no-ssl", "ssl_flag", default=False, help="Use HTTPS (default: HTTP).")
@click.option(
    "--default",
    "default_flag",
    is_flag=True,
    default=False,
    help="Also make this the default connection (used when -c is not given).",
)
def connection_add(
    name: str,
    description: str,
    address: str,
    port: int,
    api_key: str | None,
    ssl_flag: bool,
    default_flag: bool,
) -> None:
    """Add connection NAME to the store, replacing any of that name."""
    scheme = "https" if ssl_flag else "http"
    connections.register_connection(
        name,
        address,
        port=port,
        scheme=scheme,
        api_key=api_key,
        description=description,
        make_default=default_flag,
    )
    suffix = " and made it the default" if default_flag else ""
    options().emit(f'Added connection "{name}" ({scheme}://{address}:{port}){suffix}.')


@connection.command(name="remove")
@click.argument("name")
def connection_remove(name: str) -> None:
    """Remove connection NAME from the store."""
    was_default = connections.get_default_connection() == name
    connections.remove_connection(name)
    suffix = "; there is no default connection now" if was_default else ""
    options().emit(f'Removed connection "{name}"{suffix}.')


def _list_pretty(records: list[dict[str, Any]]) -> Any:
    view = table("Name", "Description", "Address", "Port", "Scheme", "API Key", "Default")
    for rec in records:
        view.add_row(
            rec["name"],
            rec["description"] or "",
            rec["address"] or NOT_AVAILABLE,
            str(rec["port"]) if rec["port"] is not None else NOT_AVAILABLE,
            rec["scheme"] or NOT_AVAILABLE,
            rec["api_key"] or "",
            "yes" if rec["default"] else "",
        )
    return view


def _prometheus_targets(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "targets": [f"{rec['address']}:{rec['port']}"],
            "labels": {
                "job": "pvc",
                "pvc_cluster_name": f"{rec['name']}: {rec['description']}",
                "pvc_cluster_id": rec["name"],
            },
        }
        for rec in records
        if rec["address"]
    ]


@connection.command(name="list")
@click.option(
    "-k",
    "--show-keys",
    "show_keys_flag",
    is_flag=True,
    default=False,
    help="Show API keys instead of masking them.",
)
@format_option("pretty", "raw", "json", "json-pretty", "json-prometheus")
def connection_list(show_keys_flag: bool, output_format: str) -> None:
    """List the stored connections (API keys masked unless -k)."""
    records = connection_records(show_keys=show_keys_flag)
    if output_format == "raw":
        emit_lines(rec["name"] for rec in records)
    elif output_format == "json-prometheus":
        emit_data(_prometheus_targets(records), "json-pretty", _list_pretty)
    else:
        emit_data(records, output_format, _list_pretty)


def _detail_record(name: str, description: str, status: dict[str, Any] | None) -> dict[str, Any]:
    def total(key: str) -> Any:
        value = status.get(key) if status else None
        return value.get("total") if isinstance(value, dict) else value

    health = (status or {}).get("cluster_health")
    return {
        "name": name,
        "description": description,
        "health": health.get("health") if isinstance(health, dict) else None,
        "maintenance": (status or {}).get("maintenance"),
        "primary_node": (status or {}).get("primary_node"),
        "pvc_version": (status or {}).get("pvc_version"),
        "nodes": total("nodes"),
        "vms": total("vms"),
        "networks": total("networks"),
        "osds": total("osds"),
        "pools": total("pools"),
        "volumes": total("volumes"),
        "snapshots": total("snapshots"),
    }


def _detail_pretty(records: list[dict[str, Any]]) -> Any:
    keys = [
        "primary_node",
        "pvc_version",
        "nodes",
        "vms",
        "networks",
        "osds",
        "pools",
        "volumes",
        "snapshots",
    ]
    view = table(
        "Name",
        "Description",
        "Health",
        "Maintenance",
        "Primary",
        "Version",
        "Nodes",
        "VMs",
        "Networks",
        "OSDs",
        "Pools",
        "Volumes",
        "Snapshots",
    )
    for rec in records:
        view.add_row(
            rec["name"],
            rec["description"] or "",
            health_text(rec["health"]),
            Text(NOT_AVAILABLE if rec["maintenance"] is None else str(rec["maintenance"])),
            *[NOT_AVAILABLE if rec[key] is None else str(rec[key]) for key in keys],
        )
    return view


@connection.command(name="detail")
@format_option("pretty", "json", "json-pretty")
def connection_detail(output_format: str) -> None:
    """Show the status of every stored cluster (GET /status on each connection)."""
    cli = options()
    records = []
    data = connections.load_connections()
    for name in sorted(data):
        try:
            conn = connections.entry_to_connection(name, data[name])
        except ConnectionStoreError:
            continue
        client = ApiClient(conn, debug_log=cli.debug_log())
        try:
            status = client.get("/status").expect(200)
        except (ApiError, ApiUnreachable) as exc:
            cli.note(f'Connection "{name}": {exc}')
            status = None
        records.append(_detail_record(name, conn.description, status if isinstance(status, dict) else None))
    if not records:
        raise CliError("No usable connections in the store")
    emit_data(records, output_format, _detail_pretty)
