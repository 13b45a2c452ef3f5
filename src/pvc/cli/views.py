"""Pretty (human) views of cluster status and tasks."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from pvc.cli.output import NOT_AVAILABLE, details, health_text, human_bytes, human_mib, table


def _is_on(value: Any) -> bool:
    return str(value).lower() == "true"


def _counts(value: Any) -> str:
    """``{"total": 3, "run,ready": 3}`` as ``3 (run,ready: 3)``; plain numbers pass through."""
    if not isinstance(value, dict):
        return NOT_AVAILABLE if value is None else str(value)
    total = value.get("total", NOT_AVAILABLE)
    parts = [f"{key}: {count}" for key, count in sorted(value.items()) if key != "total"]
    return f"{total} ({', '.join(parts)})" if parts else str(total)


def _messages(messages: Any) -> list[Text]:
    """Health messages (objects with ``health_delta``/``text`` or plain strings) as lines."""
    lines = []
    for item in messages or []:
        if isinstance(item, dict):
            delta = item.get("health_delta")
            prefix = f"(-{delta}%) " if isinstance(delta, int) and delta else ""
            name = f"{item['id']}: " if item.get("id") else ""
            lines.append(Text(f"  {prefix}{name}{item.get('text', '')}"))
        else:
            lines.append(Text(f"  {item}"))
    return lines


def _health_line(data: dict[str, Any]) -> Text:
    health = data.get("cluster_health") or {}
    line = health_text(health.get("health") if isinstance(health, dict) else None)
    if _is_on(data.get("maintenance")):
        line.append(" (maintenance on)", style="blue")
    return line


def _percent(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.1f}%" if isinstance(value, float) else f"{value}%"
    return NOT_AVAILABLE


def _resources(resources: Any) -> list[tuple[str, str]]:
    if not isinstance(resources, dict):
        return []
    rows = []
    memory = resources.get("memory")
    if isinstance(memory, dict):
        rows.append(
            (
                "Memory",
                f"{human_mib(memory.get('used'))} used of {human_mib(memory.get('total'))} "
                f"({_percent(memory.get('utilization'))}); allocated {human_mib(memory.get('allocated'))}, "
                f"provisioned {human_mib(memory.get('provisioned'))}",
            )
        )
    cpu = resources.get("cpu") or resources.get("vcpu")
    if isinstance(cpu, dict):
        rows.append(
            (
                "CPU",
                f"load {cpu.get('load', NOT_AVAILABLE)} of {cpu.get('total', NOT_AVAILABLE)} "
                f"({_percent(cpu.get('utilization'))}); allocated {cpu.get('allocated', NOT_AVAILABLE)}",
            )
        )
    disk = resources.get("disk")
    if isinstance(disk, dict):
        rows.append(
            (
                "Disk",
                f"{human_bytes(disk.get('used'))} used of {human_bytes(disk.get('total'))} "
                f"({_percent(disk.get('utilization'))})",
            )
        )
    return rows


def cluster_status_pretty(data: Any) -> RenderableType:
    """The full ``cluster status`` view."""
    if not isinstance(data, dict):
        return Text(str(data))
    rows: list[tuple[str, RenderableType | str]] = []
    if data.get("cluster_name"):
        rows.append(("Cluster name", str(data["cluster_name"])))
    rows += [
        ("Cluster health", _health_line(data)),
        ("Primary node", str(data.get("primary_node") or NOT_AVAILABLE)),
        ("PVC version", str(data.get("pvc_version") or NOT_AVAILABLE)),
        ("Upstream IP", str(data.get("upstream_ip") or NOT_AVAILABLE)),
        ("Nodes", _counts(data.get("nodes"))),
        ("VMs", _counts(data.get("vms"))),
        ("Networks", _counts(data.get("networks"))),
        ("OSDs", _counts(data.get("osds"))),
        ("Pools", _counts(data.get("pools"))),
        ("Volumes", _counts(data.get("volumes"))),
        ("Snapshots", _counts(data.get("snapshots"))),
    ]
    rows += _resources(data.get("resources"))
    parts: list[RenderableType] = [details(rows)]
    health = data.get("cluster_health")
    messages = _messages(health.get("messages") if isinstance(health, dict) else None)
    if messages:
        parts += [Text(""), Text("Health messages:", style="bold"), *messages]
    return Group(*parts)


def cluster_status_short(data: Any) -> RenderableType:
    """The ``cluster status -f short`` view: health, messages and per-node health."""
    if not isinstance(data, dict):
        return Text(str(data))
    rows: list[tuple[str, RenderableType | str]] = [
        ("Cluster health", _health_line(data)),
        ("Primary node", str(data.get("primary_node") or NOT_AVAILABLE)),
    ]
    parts: list[RenderableType] = [details(rows)]
    health = data.get("cluster_health")
    messages = _messages(health.get("messages") if isinstance(health, dict) else None)
    if messages:
        parts += [Text(""), Text("Health messages:", style="bold"), *messages]
    node_health = data.get("node_health")
    if isinstance(node_health, dict) and node_health:
        nodes = table("Node", "Health", "Messages")
        for name, info in sorted(node_health.items()):
            info = info if isinstance(info, dict) else {}
            nodes.add_row(
                name, health_text(info.get("health")), "; ".join(map(str, info.get("messages") or []))
            )
        parts += [Text(""), nodes]
    return Group(*parts)


def task_list_pretty(tasks: list[dict[str, Any]]) -> RenderableType:
    """The ``cluster task`` list."""
    if not tasks:
        return Text("No tasks.")
    view = table("ID", "Type", "Worker", "Function", "Arguments")
    for task in tasks:
        arguments = []
        if task.get("args"):
            arguments.append(str(task["args"]))
        if task.get("kwargs"):
            arguments.append(str(task["kwargs"]))
        view.add_row(
            str(task.get("id")),
            str(task.get("type")),
            str(task.get("worker")),
            str(task.get("function")),
            " ".join(arguments),
        )
    return view


def task_pretty(task_id: str, data: Any) -> RenderableType:
    """One task's state (``cluster task ID --no-wait``)."""
    if not isinstance(data, dict):
        return Text(str(data))
    progress = f"{data.get('current', NOT_AVAILABLE)}/{data.get('total', NOT_AVAILABLE)}"
    return details(
        [
            ("Task ID", task_id),
            ("State", str(data.get("state", NOT_AVAILABLE))),
            ("Progress", progress),
            ("Status", str(data.get("status", ""))),
        ]
    )
