"""``pvc network sriov``: the SR-IOV physical and virtual functions of a node.

This module defines the ``sriov`` group; :mod:`pvc.cli.main` adds it to ``pvc network``.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import RenderableType
from rich.text import Text

from pvc.cli.context import options
from pvc.cli.output import as_dict, details, dicts, emit_data, format_option, table, text_or_na
from pvc.client.http import segment

#: A VF's settings as the views show them: (label, key of ``config``).
VF_SETTINGS = (
    ("VLAN ID", "vlan_id"),
    ("VLAN QoS", "vlan_qos"),
    ("Min TX (Mb/s)", "tx_rate_min"),
    ("Max TX (Mb/s)", "tx_rate_max"),
    ("Link state", "link_state"),
    ("Spoof check", "spoof_check"),
    ("Trust", "trust"),
    ("Query RSS", "query_rss"),
)


@click.group(name="sriov")
def sriov() -> None:
    """Show the SR-IOV physical and virtual functions of nodes."""


@sriov.group(name="pf")
def sriov_pf() -> None:
    """SR-IOV physical functions (PFs)."""


@sriov.group(name="vf")
def sriov_vf() -> None:
    """SR-IOV virtual functions (VFs)."""


def _pfs_view(pfs: Any) -> RenderableType:
    items = dicts(pfs)
    if not items:
        return Text("No SR-IOV physical functions.")
    view = table("Device", "MTU", "VFs")
    for item in items:
        vfs = item.get("vfs")
        view.add_row(
            text_or_na(item.get("phy")),
            text_or_na(item.get("mtu")),
            ", ".join(str(vf) for vf in vfs) if isinstance(vfs, list) and vfs else "-",
        )
    return view


@sriov_pf.command(name="list")
@click.argument("node")
@format_option("pretty", "json", "json-pretty")
def sriov_pf_list(node: str, output_format: str) -> None:
    """List the SR-IOV physical functions of NODE."""
    pfs = options().client().get(f"/sriov/pf/{segment(node)}").expect(200)
    emit_data(pfs, output_format, _pfs_view)


def _usage(item: dict[str, Any]) -> tuple[str, str]:
    usage = as_dict(item.get("usage"))
    used = usage.get("used")
    return ("yes" if used else "no") if isinstance(used, bool) else text_or_na(used), text_or_na(
        usage.get("domain")
    )


def _vfs_view(vfs: Any) -> RenderableType:
    items = dicts(vfs)
    if not items:
        return Text("No SR-IOV virtual functions.")
    view = table("Device", "PF", "MTU", "MAC address", *(label for label, _ in VF_SETTINGS), "Used", "Domain")
    for item in items:
        config = as_dict(item.get("config"))
        view.add_row(
            text_or_na(item.get("phy")),
            text_or_na(item.get("pf")),
            text_or_na(item.get("mtu")),
            text_or_na(item.get("mac")),
            *(text_or_na(config.get(key)) for _, key in VF_SETTINGS),
            *_usage(item),
        )
    return view


@sriov_vf.command(name="list")
@click.argument("node")
@click.argument("pf", required=False, default=None)
@format_option("pretty", "json", "json-pretty")
def sriov_vf_list(node: str, pf: str | None, output_format: str) -> None:
    """List the SR-IOV virtual functions of NODE, optionally only those of physical function PF."""
    vfs = options().client().get(f"/sriov/vf/{segment(node)}", params={"pf": pf}).expect(200)
    emit_data(vfs, output_format, _vfs_view)


def _vf_details(item: dict[str, Any]) -> RenderableType:
    config = as_dict(item.get("config"))
    used, domain = _usage(item)
    rows: list[tuple[str, RenderableType | str]] = [
        ("Device", text_or_na(item.get("phy"))),
        ("Physical function", text_or_na(item.get("pf"))),
        ("MTU", text_or_na(item.get("mtu"))),
        ("MAC address", text_or_na(item.get("mac"))),
        *((label, text_or_na(config.get(key))) for label, key in VF_SETTINGS),
        ("Used", used),
        ("Used by domain", domain),
    ]
    return details(rows)


@sriov_vf.command(name="info")
@click.argument("node")
@click.argument("vf")
@format_option("pretty", "json", "json-pretty")
def sriov_vf_info(node: str, vf: str, output_format: str) -> None:
    """Show SR-IOV virtual function VF of NODE."""
    item = options().client().get(f"/sriov/vf/{segment(node)}/{segment(vf)}").expect_one(f"VF {vf}")
    emit_data(item, output_format, _vf_details)
