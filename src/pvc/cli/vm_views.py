"""Pretty (human) views of VMs: the list, the details of one VM and its devices and tags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from pvc.cli.output import NOT_AVAILABLE, Column, as_dict, details, dicts, record_table, table, text_or_na
from pvc.domain_xml.bridges import vni_of_bridge

STATE_STYLES = {
    "start": "green",
    "restart": "yellow",
    "shutdown": "yellow",
    "stop": "red",
    "fail": "red",
    "disable": "blue",
    "migrate": "blue",
    "unmigrate": "blue",
    "provision": "blue",
}


def vm_state_text(state: Any) -> Text:
    """A VM state coloured by what it means (running green, stopped or failed red...)."""
    word = text_or_na(state)
    return Text(word, style=STATE_STYLES.get(word, ""))


def network_id(nic: dict[str, Any]) -> str:
    """The VNI of a NIC entry (from ``vni``, else from its bridge), or its source when it has none."""
    vni = nic.get("vni")
    if vni is not None and vni != "":
        return str(vni)
    source = str(nic.get("source") or "")
    found = vni_of_bridge(source)
    return str(found) if found is not None else source or NOT_AVAILABLE


def _names(items: Iterable[dict[str, Any]], key: str = "name") -> str:
    return ",".join(str(item.get(key)) for item in items if item.get(key) is not None)


def vm_list_pretty(vms: Any) -> RenderableType:
    """The ``vm list`` table."""
    rows = sorted(dicts(vms), key=lambda vm: str(vm.get("name")))
    if not rows:
        return Text("No VMs.")
    view = table("Name", "State", "Node", "Migrated", "vCPUs", "RAM (MiB)", "Tags", "Networks")
    for vm in rows:
        view.add_row(
            str(vm.get("name")),
            vm_state_text(vm.get("state")),
            text_or_na(vm.get("node")),
            text_or_na(vm.get("migrated")),
            text_or_na(vm.get("vcpu")),
            text_or_na(vm.get("memory")),
            _names(dicts(vm.get("tags"))),
            ",".join(network_id(nic) for nic in dicts(vm.get("networks"))),
        )
    return view


def _node_limit(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "Any"
    return str(value) if value else "Any"


def _yes_no(value: Any) -> str:
    if isinstance(value, str):
        return "Yes" if value.lower() == "true" else "No"
    return "Yes" if value else "No"


def _tags(tags: list[dict[str, Any]]) -> str:
    parts = []
    for tag in tags:
        notes = [str(tag.get("type") or "user")] + (
            ["protected"] if _yes_no(tag.get("protected")) == "Yes" else []
        )
        parts.append(f"{tag.get('name')} ({', '.join(notes)})")
    return ", ".join(parts) or "None"


def _vnc(value: Any) -> str:
    vnc = as_dict(value)
    port = str(vnc.get("port") or "")
    if not port or port == "-1":
        return "None"
    return f"{vnc.get('listen') or '*'}:{port}"


def _vcpus(vm: dict[str, Any]) -> str:
    topology = vm.get("vcpu_topology")
    suffix = f" (topology {topology})" if topology and topology != NOT_AVAILABLE else ""
    return f"{text_or_na(vm.get('vcpu'))}{suffix}"


def _downtime(value: Any) -> str:
    return f"{value} ms" if value not in (None, "") else NOT_AVAILABLE


def networks_pretty(nics: Any) -> RenderableType:
    """A VM's NICs: network, bridge, MAC address and model."""
    columns: list[Column] = [
        ("Network", network_id),
        ("Source", "source"),
        ("MAC Address", "mac"),
        ("Model", "model"),
        ("Type", "type"),
    ]
    return record_table(nics, columns, "No network interfaces.")


def volumes_pretty(disks: Any) -> RenderableType:
    """A VM's disks: volume, type, target device and bus."""
    columns: list[Column] = [("Volume", "name"), ("Type", "type"), ("Target", "dev"), ("Bus", "bus")]
    return record_table(disks, columns, "No disks.")


NIC_COUNTERS = {
    "rd_bytes": "RX bytes",
    "rd_packets": "RX packets",
    "rd_errors": "RX errors",
    "rd_drops": "RX drops",
    "wr_bytes": "TX bytes",
    "wr_packets": "TX packets",
    "wr_errors": "TX errors",
    "wr_drops": "TX drops",
}
DISK_COUNTERS = {"rd_req": "Reads", "rd_bytes": "Read bytes", "wr_req": "Writes", "wr_bytes": "Written bytes"}


def _label(key: str) -> str:
    """A statistics key as a column heading (``swap_in`` -> ``Swap in``, ``rss`` -> ``RSS``)."""
    words = [{"rss": "RSS", "cpu": "CPU"}.get(word, word) for word in key.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _titled(title: str, view: RenderableType) -> RenderableType:
    return Group(Text(title, style="bold"), view)


def _stats(title: str, values: dict[str, Any]) -> RenderableType:
    view = table(*(_label(key) for key in values))
    view.add_row(*(text_or_na(value) for value in values.values()))
    return _titled(title, view)


def _counters(
    title: str, first: str, key: str, labels: dict[str, str], items: list[dict[str, Any]]
) -> RenderableType:
    view = table(first, *labels.values())
    for item in items:
        view.add_row(text_or_na(item.get(key)), *(text_or_na(item.get(name)) for name in labels))
    return _titled(title, view)


def vm_info_pretty(vm: Any, long: bool = False) -> RenderableType:
    """The ``vm info`` view; ``long`` adds the machine details and the memory, vCPU, NIC and disk stats."""
    if not isinstance(vm, dict):
        return Text(str(vm))
    rows: list[tuple[str, RenderableType | str]] = [
        ("Name", text_or_na(vm.get("name"))),
        ("UUID", text_or_na(vm.get("uuid"))),
        ("Description", text_or_na(vm.get("description"))),
        ("Profile", text_or_na(vm.get("profile"))),
        ("State", vm_state_text(vm.get("state"))),
        ("Node", text_or_na(vm.get("node"))),
        ("Last node", text_or_na(vm.get("last_node"))),
        ("Migrated", text_or_na(vm.get("migrated"))),
    ]
    if vm.get("failed_reason"):
        rows.append(("Failed reason", Text(str(vm["failed_reason"]), style="red")))
    rows += [
        ("vCPUs", _vcpus(vm)),
        ("Memory", f"{text_or_na(vm.get('memory'))} MiB"),
        ("Node limit", _node_limit(vm.get("node_limit"))),
        (
            "Node selector",
            "Default" if vm.get("node_selector") in (None, "", "none") else str(vm["node_selector"]),
        ),
        ("Autostart", _yes_no(vm.get("node_autostart"))),
        ("Migration method", text_or_na(vm.get("migration_method"))),
        ("Migration max downtime", _downtime(vm.get("migration_max_downtime"))),
        ("Tags", _tags(dicts(vm.get("tags")))),
        ("VNC", _vnc(vm.get("vnc"))),
    ]
    if long:
        rows += [
            ("Type", text_or_na(vm.get("type"))),
            ("Architecture", text_or_na(vm.get("arch"))),
            ("Machine", text_or_na(vm.get("machine"))),
            ("Emulator", text_or_na(vm.get("emulator"))),
            ("Console", text_or_na(vm.get("console"))),
            ("Features", ", ".join(map(str, vm.get("features") or [])) or "None"),
            (
                "Controllers",
                ", ".join(f"{c.get('type')} ({c.get('model')})" for c in dicts(vm.get("controllers")))
                or "None",
            ),
        ]
    nics, disks = dicts(vm.get("networks")), dicts(vm.get("disks"))
    parts: list[RenderableType] = [
        details(rows),
        Text(""),
        networks_pretty(nics),
        Text(""),
        volumes_pretty(disks),
    ]
    if long:
        memory_stats, vcpu_stats = as_dict(vm.get("memory_stats")), as_dict(vm.get("vcpu_stats"))
        if memory_stats:
            parts += [Text(""), _stats("Memory statistics (KiB)", memory_stats)]
        if vcpu_stats:
            parts += [Text(""), _stats("vCPU statistics (ns)", vcpu_stats)]
        if nics:
            parts += [Text(""), _counters("Network statistics", "MAC Address", "mac", NIC_COUNTERS, nics)]
        if disks:
            parts += [Text(""), _counters("Disk statistics", "Volume", "name", DISK_COUNTERS, disks)]
    return Group(*parts)


def tags_pretty(data: Any) -> RenderableType:
    """``vm tag get``: a VM's tags with their type and protection."""
    tags = dicts(as_dict(data).get("tags"))
    if not tags:
        return Text("No tags.")
    view = table("Tag", "Type", "Protected")
    for tag in tags:
        view.add_row(text_or_na(tag.get("name")), text_or_na(tag.get("type")), _yes_no(tag.get("protected")))
    return view


def vcpus_pretty(data: Any) -> RenderableType:
    """``vm vcpu get``: the vCPU count and topology."""
    info = as_dict(data)
    topology = "/".join(text_or_na(info.get(key)) for key in ("sockets", "cores", "threads"))
    return details(
        [
            ("Name", text_or_na(info.get("name"))),
            ("vCPUs", text_or_na(info.get("vcpus"))),
            ("Topology (S/C/T)", topology if info.get("sockets") else "None"),
        ]
    )


def memory_pretty(data: Any) -> RenderableType:
    """``vm memory get``: the memory size."""
    info = as_dict(data)
    return details(
        [("Name", text_or_na(info.get("name"))), ("Memory", f"{text_or_na(info.get('memory'))} MiB")]
    )
