"""``pvc cluster fault``: list, acknowledge and delete cluster faults."""

from __future__ import annotations

from typing import Any

import click
from rich.console import RenderableType
from rich.text import Text

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.output import emit_data, format_option, table
from pvc.client.http import segment

DEFAULT_SORT_KEY = "last_reported"


@click.group(name="fault")
def fault() -> None:
    """Manage cluster faults."""


def _status_text(status: Any) -> Text:
    word = str(status) if status is not None else "N/A"
    return Text(word, style="red" if word == "new" else "green" if word == "ack" else "")


def _delta(value: Any) -> str:
    return f"-{value}%" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _faults_view(faults: Any, long: bool) -> RenderableType:
    if not isinstance(faults, list) or not faults:
        return Text("No faults.")
    if long:
        view = table(
            "ID", "Status", "Health", "First Reported", "Last Reported", "Acknowledged At", "Message"
        )
    else:
        view = table("ID", "Status", "Health", "Last Reported", "Message")
    for item in faults:
        if not isinstance(item, dict):
            continue
        cells: list[RenderableType | str] = [
            str(item.get("id", "")),
            _status_text(item.get("status")),
            _delta(item.get("health_delta")),
        ]
        if long:
            cells += [str(item.get("first_reported") or ""), str(item.get("last_reported") or "")]
            cells.append(str(item.get("acknowledged_at") or ""))
        else:
            cells.append(str(item.get("last_reported") or ""))
        cells.append(str(item.get("message", "")))
        view.add_row(*cells)
    return view


@fault.command(name="list")
@click.argument("limit", required=False, default=None)
@format_option("short", "long", "json", "json-pretty", default="short")
def fault_list(limit: str | None, output_format: str) -> None:
    """List cluster faults (newest report first), or the one with ID LIMIT."""
    client = options().client()
    if limit is not None:
        data = client.get(f"/faults/{segment(limit)}").expect(200)
    else:
        data = client.get("/faults", params={"sort_key": DEFAULT_SORT_KEY}).expect(200)
    emit_data(data, output_format, lambda faults: _faults_view(faults, long=output_format == "long"))


def _each(method: str, fault_ids: tuple[str, ...]) -> None:
    """Send ``method`` to every ``/faults/{id}``; print each reply, fail if any call failed."""
    cli = options()
    client = cli.client()
    failures = []
    for fault_id in fault_ids:
        reply = client.request(method, f"/faults/{segment(fault_id)}")
        if reply.status == 200:
            cli.emit(reply.message)
        else:
            failures.append(reply.message)
    if failures:
        raise CliError("; ".join(failures))


@fault.command(name="ack")
@click.argument("fault_id", nargs=-1, required=True)
def fault_ack(fault_id: tuple[str, ...]) -> None:
    """Acknowledge one or more faults by FAULT_ID."""
    _each("PUT", fault_id)


@fault.command(name="ack-all")
@yes_option
def fault_ack_all(confirm_flag: bool) -> None:
    """Acknowledge every current fault."""
    cli = options()
    client = cli.client()
    confirm("Acknowledge all current cluster faults", confirm_flag)
    reply = client.put("/faults")
    reply.expect(200)
    cli.emit(reply.message)


@fault.command(name="delete")
@click.argument("fault_id", nargs=-1, required=True)
def fault_delete(fault_id: tuple[str, ...]) -> None:
    """Delete one or more faults by FAULT_ID."""
    _each("DELETE", fault_id)


@fault.command(name="delete-all")
@yes_option
def fault_delete_all(confirm_flag: bool) -> None:
    """Delete every fault."""
    cli = options()
    client = cli.client()
    confirm("Delete all cluster faults", confirm_flag)
    reply = client.delete("/faults")
    reply.expect(200)
    cli.emit(reply.message)
