"""Pretty (human) views of client networks, their DHCP leases and their ACLs."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from pvc.cli.output import Cell, Column, as_dict, details, is_number, record_table, text_or_na

#: What the MTU column shows while the nodes' default applies.
DEFAULT_MTU = "default"


def _mtu(value: Any) -> str:
    return DEFAULT_MTU if value is None or value == "" else str(value)


def _flag(value: Any) -> Text:
    on = value is True or str(value).lower() in ("true", "1", "yes")
    return Text("yes" if on else "no", style="green" if on else "")


def _in(family: str, key: str, show: Callable[[Any], RenderableType | str] = text_or_na) -> Cell:
    """A column function showing ``key`` of a network's ``family`` (``ip4``/``ip6``) object."""

    def cell(net: dict[str, Any]) -> RenderableType | str:
        return show(as_dict(net.get(family)).get(key))

    return cell


def network_list_pretty(networks: Any) -> RenderableType:
    """The ``network list`` table."""
    columns: list[Column] = [
        ("VNI", "vni"),
        ("Description", "description"),
        ("Type", "type"),
        ("MTU", lambda net: _mtu(net.get("mtu"))),
        ("Domain", "domain"),
        ("IPv4 network", _in("ip4", "network")),
        ("IPv4 gateway", _in("ip4", "gateway")),
        ("DHCPv4", _in("ip4", "dhcp_flag", _flag)),
        ("IPv6 network", _in("ip6", "network")),
        ("IPv6 gateway", _in("ip6", "gateway")),
        ("DHCPv6", _in("ip6", "dhcp_flag", _flag)),
    ]
    return record_table(networks, columns, "No networks.")


def network_info_pretty(net: dict[str, Any], acls: Any = None, leases: Any = None) -> RenderableType:
    """The ``network info`` view; with ``acls`` and ``leases`` (``--format long``) those too."""
    ip4, ip6 = as_dict(net.get("ip4")), as_dict(net.get("ip6"))
    rows: list[tuple[str, RenderableType | str]] = [
        ("VNI", text_or_na(net.get("vni"))),
        ("Description", text_or_na(net.get("description"))),
        ("Type", text_or_na(net.get("type"))),
        ("MTU", _mtu(net.get("mtu"))),
    ]
    if net.get("type") == "managed":
        rows += [
            ("Domain", text_or_na(net.get("domain"))),
            ("DNS servers", ", ".join(str(s) for s in net.get("name_servers") or []) or "N/A"),
            ("IPv4 network", text_or_na(ip4.get("network"))),
            ("IPv4 gateway", text_or_na(ip4.get("gateway"))),
            ("DHCPv4", _flag(ip4.get("dhcp_flag"))),
        ]
        if ip4.get("dhcp_flag"):
            rows.append(
                ("DHCPv4 range", f"{text_or_na(ip4.get('dhcp_start'))} - {text_or_na(ip4.get('dhcp_end'))}")
            )
        rows += [
            ("IPv6 network", text_or_na(ip6.get("network"))),
            ("IPv6 gateway", text_or_na(ip6.get("gateway"))),
            ("DHCPv6", _flag(ip6.get("dhcp_flag"))),
        ]
    parts: list[RenderableType] = [details(rows)]
    if acls is not None:
        parts += [Text(""), acl_list_pretty(acls)]
    if leases is not None:
        parts += [Text(""), lease_list_pretty(leases)]
    return Group(*parts) if len(parts) > 1 else parts[0]


def _expiry(value: Any) -> str:
    """A lease's ``timestamp``: its expiry as a UTC date, or ``static`` for a reservation."""
    if is_number(value):
        moment = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return text_or_na(value)


def lease_list_pretty(leases: Any) -> RenderableType:
    """The ``network dhcp list`` table."""
    columns: list[Column] = [
        ("Hostname", "hostname"),
        ("IP address", "ip4_address"),
        ("MAC address", "mac_address"),
        ("Expires (UTC)", lambda lease: _expiry(lease.get("timestamp"))),
    ]
    return record_table(leases, columns, "No leases.")


def acl_list_pretty(acls: Any) -> RenderableType:
    """The ``network acl list`` table."""
    columns: list[Column] = [
        ("Direction", "direction"),
        ("Order", "order"),
        ("Description", "description"),
        ("Rule", "rule"),
    ]
    return record_table(acls, columns, "No ACLs.")
