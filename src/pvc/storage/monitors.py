"""The monitor addresses a ceph.conf names (``mon host``), as VM disk definitions give them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pvc.storage.client import CephClient

_KEY = re.compile(r"^\s*mon[ _]host\s*=\s*(.+?)\s*$", re.MULTILINE)
#: One address of a ``mon host`` entry: ``v2:10.0.0.1:3300/0``, ``10.0.0.1:6789``, ``[::1]:3300``, a name.
_ADDRESS = re.compile(r"^(?:v[12]:)?(\[[0-9a-fA-F:]+\]|[^:/\[\]]+)(?::\d+)?(?:/\d+)?$")


def monitor_hosts(text: str) -> frozenset[str]:
    """The monitor host names or addresses in ceph.conf ``text`` (without ports or brackets)."""
    hosts: set[str] = set()
    for value in _KEY.findall(text):
        for token in re.split(r"[\s,;]+", value.replace("[v", " v").replace("]", " ")):
            token = token.strip("[] ")
            match = _ADDRESS.match(token)
            if match:
                hosts.add(match.group(1).strip("[]"))
    return frozenset(hosts)


def read_monitor_hosts(conf_path: str | Path) -> frozenset[str]:
    """The monitors a ceph.conf file names (empty if it cannot be read)."""
    try:
        return monitor_hosts(Path(conf_path).read_text())
    except OSError:
        return frozenset()


def v1_endpoints(client: CephClient) -> list[tuple[str, int]]:
    """(address, port) of every monitor's msgr v1 endpoint in the current monitor map, as
    VM disk definitions name them (QEMU's rbd driver speaks v1 to the hosts it is given)."""
    found = []
    for monitor in (client.mon_command("mon dump") or {}).get("mons", []):
        for entry in monitor.get("public_addrs", {}).get("addrvec", []):
            if entry.get("type") != "v1":
                continue
            host, _, port = str(entry.get("addr", "")).rpartition(":")
            port = port.split("/")[0]
            if host and port.isdigit():
                found.append((host.strip("[]"), int(port)))
    return found
