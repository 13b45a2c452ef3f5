"""This host's neighbour (ARP) table: the link-layer address an IP address was last seen at."""

from __future__ import annotations

import ipaddress
import json

from pvc.net.iproute import NetError, ip


def mac_of(address: str) -> str | None:
    """The MAC address the kernel holds for IPv4 ``address`` (lower case), or None when it
    has none (never seen, or its entry failed). Needs no privileges."""
    try:
        parsed = ipaddress.IPv4Address(address)
    except ValueError:
        return None
    try:
        out = ip("-j", "neigh", "show", "to", str(parsed)).stdout
        entries = json.loads(out) if out.strip() else []
    except (NetError, ValueError):
        return None
    for entry in entries:
        mac = entry.get("lladdr")
        if entry.get("dst") == str(parsed) and mac and "FAILED" not in entry.get("state", []):
            return str(mac).lower()
    return None
