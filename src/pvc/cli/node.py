"""``pvc node``: list and inspect nodes, change their coordinator and domain states, read logs."""

from __future__ import annotations

import socket
import time
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from pvc.cli.context import CliError, options
from pvc.cli.logview import log_options, show_log
from pvc.cli.output import (
    details,
    emit_data,
    emit_lines,
    format_option,
    health_text,
    human_mib,
    state_text,
    table,
)
from pvc.cli.progress import wait_for_node_state
from pvc.client.http import segment

PRIMARY_POLL_INTERVAL = 1.0
PRIMARY_POLL_ATTEMPTS = 30

DAEMON_GOOD, DAEMON_BAD = ("run",), ("dead", "fenced", "stop")
COORD_GOOD, COORD_BAD = ("primary", "secondary", "client"), ()
DOMAIN_GOOD, DOMAIN_BAD = ("ready",), ("flushed",)


def local_node_name() -> str:
    """This machine's short host name: the default NODE."""
    return socket.gethostname().split(".")[0]


node_argument = click.argument("node", required=False, default=local_node_name)
wait_option = click.option(
    "-w", "--wait", "wait_flag", is_flag=True, default=False, help="Wait for the state change to finish."
)


@click.group(name="node")
def node() -> None:
    """Manage the cluster's nodes."""


def _nodes_view(nodes: Any) -> RenderableType:
    if not isinstance(nodes, list) or not nodes:
        return Text("No nodes.")
    view = table(
        "Name",
        "Version",
        "Health",
        "Daemon",
        "Coordinator",
        "Domain",
        "VMs",
        "CPUs",
        "Load",
        "Mem Total",
        "Used",
        "Free",
        "Alloc",
        "Prov",
    )
    for item in sorted((n for n in nodes if isinstance(n, dict)), key=lambda n: str(n.get("name"))):
        memory = item.get("memory") if isinstance(item.get("memory"), dict) else {}
        view.add_row(
            str(item.get("name")),
            str(item.get("pvc_version") or "N/A"),
            health_text(item.get("health")),
            state_text(item.get("daemon_state"), DAEMON_GOOD, DAEMON_BAD),
            state_text(item.get("coordinator_state"), COORD_GOOD, COORD_BAD),
            state_text(item.get("domain_state"), DOMAIN_GOOD, DOMAIN_BAD),
            str(item.get("domains_count", "N/A")),
            str(item.get("cpu_count", "N/A")),
            str(item.get("load", "N/A")),
            *[human_mib(memory.get(key)) for key in ("total", "used", "free", "allocated", "provisioned")],
        )
    return view


@node.command(name="list")
@click.argument("limit", required=False, default=None)
@click.option(
    "-ds", "--daemon-state", "daemon_state_filter", default=None, help="Only nodes in this daemon state."
)
@click.option(
    "-cs",
    "--coordinator-state",
    "coordinator_state_filter",
    default=None,
    help="Only nodes in this coordinator state.",
)
@click.option(
    "-vs", "--domain-state", "domain_state_filter", default=None, help="Only nodes in this domain state."
)
@format_option("pretty", "raw", "json", "json-pretty")
def node_list(
    limit: str | None,
    daemon_state_filter: str | None,
    coordinator_state_filter: str | None,
    domain_state_filter: str | None,
    output_format: str,
) -> None:
    """List nodes, optionally only those whose name matches LIMIT (a regular expression)."""
    params = {
        "limit": limit,
        "daemon_state": daemon_state_filter,
        "coordinator_state": coordinator_state_filter,
        "domain_state": domain_state_filter,
    }
    nodes = options().client().get("/node", params=params).expect(200)
    if output_format == "raw":
        emit_lines(n.get("name") for n in nodes or [] if isinstance(n, dict))
        return
    emit_data(nodes, output_format, _nodes_view)


def _node_details(item: dict[str, Any], long: bool) -> RenderableType:
    memory = item.get("memory") if isinstance(item.get("memory"), dict) else {}
    vcpu = item.get("vcpu") if isinstance(item.get("vcpu"), dict) else {}
    rows: list[tuple[str, RenderableType | str]] = [
        ("Name", str(item.get("name"))),
        ("PVC version", str(item.get("pvc_version") or "N/A")),
        ("Health", health_text(item.get("health"))),
        ("Daemon state", state_text(item.get("daemon_state"), DAEMON_GOOD, DAEMON_BAD)),
        ("Coordinator state", state_text(item.get("coordinator_state"), COORD_GOOD, COORD_BAD)),
        ("Domain state", state_text(item.get("domain_state"), DOMAIN_GOOD, DOMAIN_BAD)),
        ("Active VMs", str(item.get("domains_count", "N/A"))),
        ("Host CPUs", str(item.get("cpu_count", "N/A"))),
        ("vCPUs", f"{vcpu.get('allocated', 'N/A')} allocated of {vcpu.get('total', 'N/A')}"),
        ("Load", str(item.get("load", "N/A"))),
        ("Architecture", str(item.get("arch", "N/A"))),
        ("Operating system", str(item.get("os", "N/A"))),
        ("Kernel", str(item.get("kernel", "N/A"))),
        ("Memory total", human_mib(memory.get("total"))),
        ("Memory used", human_mib(memory.get("used"))),
        ("Memory free", human_mib(memory.get("free"))),
        ("Memory allocated", human_mib(memory.get("allocated"))),
        ("Memory provisioned", human_mib(memory.get("provisioned"))),
    ]
    fence = item.get("fence")
    if isinstance(fence, dict):
        rows += _fence_rows(fence, long)
    parts: list[RenderableType] = [details(rows)]
    plugins = item.get("health_details")
    if long and isinstance(plugins, list) and plugins:
        checks = table("Health plugin", "Delta", "Last run", "Message")
        for plugin in plugins:
            if isinstance(plugin, dict):
                delta = plugin.get("health_delta")
                checks.add_row(
                    str(plugin.get("name")),
                    f"-{delta}%" if delta else "0%",
                    str(plugin.get("last_run", "")),
                    str(plugin.get("message", "")),
                )
        parts += [Text(""), checks]
    interfaces = item.get("interfaces")
    if long and isinstance(interfaces, dict) and interfaces:
        parts += [Text(""), _interfaces_view(interfaces)]
    return Group(*parts)


def _fence_rows(fence: dict[str, Any], long: bool) -> list[tuple[str, RenderableType | str]]:
    """The node's last fence: outcome, when and by whom; its steps with ``long``."""
    started = fence.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "N/A"
    progress = "" if fence.get("done") else ", in progress"
    rows: list[tuple[str, RenderableType | str]] = [
        (
            "Last fence",
            f"{fence.get('state')} (try {fence.get('attempt', 1)}) by {fence.get('fencer')} "
            f"at {when}{progress}",
        )
    ]
    if fence.get("error"):
        rows.append(("Fence error", str(fence["error"])))
    if fence.get("retry_at"):
        retry = time.strftime("%H:%M:%S", time.localtime(fence["retry_at"]))
        rows.append(("Next fence try", retry))
    for label, key in (("Recovered VMs", "recovered"), ("VMs not recovered", "stranded")):
        if fence.get(key):
            rows.append((label, ", ".join(str(line) for line in fence[key])))
    if long and fence.get("steps"):
        rows.append(("Fence steps", "\n".join(str(step) for step in fence["steps"])))
    return rows


INTERFACE_COLUMNS = (
    ("State", "state"),
    ("Speed", "link_speed"),
    ("MTU", "mtu"),
    ("RX b/s", "rx_bps"),
    ("TX b/s", "tx_bps"),
    ("Total b/s", "total_bps"),
    ("RX p/s", "rx_pps"),
    ("TX p/s", "tx_pps"),
    ("Total p/s", "total_pps"),
)


def _interface_figure(key: str, value: Any) -> str:
    """One interface figure as text; numbers that are not known read N/A."""
    if value is None or value == "":
        return "N/A"
    if key == "link_speed" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value} Mb/s"
    return str(value)


def _interfaces_view(interfaces: dict[str, Any]) -> RenderableType:
    """The node's network devices: link state, speed, MTU and traffic rates."""
    links = table("Interface", *(label for label, _ in INTERFACE_COLUMNS))
    for name, info in sorted(interfaces.items()):
        figures = info if isinstance(info, dict) else {}
        links.add_row(str(name), *(_interface_figure(key, figures.get(key)) for _, key in INTERFACE_COLUMNS))
    return links


@node.command(name="info")
@node_argument
@format_option("pretty", "long", "json", "json-pretty")
def node_info(node: str, output_format: str) -> None:
    """Show details of NODE (default: this host)."""
    item = options().client().get(f"/node/{segment(node)}").expect_one(f"Node {node}")
    emit_data(item, output_format, lambda data: _node_details(data, long=output_format == "long"))


@node.command(name="is-primary")
@node_argument
def node_is_primary(node: str) -> None:
    """Exit 0 if NODE (default: this host) is the primary coordinator, else 1; prints nothing."""
    client = options().client()
    for _ in range(PRIMARY_POLL_ATTEMPTS):
        reply = client.get("/status/primary_node")
        if reply.status == 200 and isinstance(reply.data, dict):
            raise click.exceptions.Exit(0 if reply.data.get("primary_node") == node else 1)
        time.sleep(PRIMARY_POLL_INTERVAL)
    raise CliError("The cluster reports no primary coordinator")


def _change_state(
    node: str, endpoint: str, state: str, wait_flag: bool, field: str, transitional: str, target: str
) -> None:
    cli = options()
    client = cli.client()
    reply = client.post(f"/node/{segment(node)}/{endpoint}", params={"state": state})
    reply.expect(200)
    message = reply.message
    cli.emit(message)
    if wait_flag and "already" not in message.lower():
        wait_for_node_state(cli, client, node, field, transitional, target)


@node.command(name="primary")
@node_argument
@wait_option
def node_primary(node: str, wait_flag: bool) -> None:
    """Make NODE (default: this host) the primary coordinator."""
    _change_state(node, "coordinator-state", "primary", wait_flag, "coordinator_state", "takeover", "primary")


@node.command(name="secondary")
@node_argument
@wait_option
def node_secondary(node: str, wait_flag: bool) -> None:
    """Make NODE (default: this host) a secondary coordinator."""
    _change_state(
        node, "coordinator-state", "secondary", wait_flag, "coordinator_state", "relinquish", "secondary"
    )


@node.command(name="flush")
@node_argument
@wait_option
def node_flush(node: str, wait_flag: bool) -> None:
    """Move all VMs off NODE (default: this host) and stop it taking new ones."""
    _change_state(node, "domain-state", "flush", wait_flag, "domain_state", "flush", "flushed")


@node.command(name="ready")
@node_argument
@wait_option
def node_ready(node: str, wait_flag: bool) -> None:
    """Let NODE (default: this host) run VMs again, moving its VMs back."""
    _change_state(node, "domain-state", "ready", wait_flag, "domain_state", "unflush", "ready")


@node.command(name="log")
@node_argument
@log_options
def node_log(node: str, lines: int | None, follow_flag: bool) -> None:
    """Show the daemon log of NODE (default: this host)."""
    show_log(f"/node/{segment(node)}/log", lines, follow_flag)
