"""Facts about the host this daemon runs on."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pvc
from pvc.config import NetworksSection
from pvc.state.records import Keepalive, NodeStatic
from pvc.state.states import NodeMode


def os_name(os_release: Path = Path("/etc/os-release")) -> str:
    """The distribution's pretty name, or the kernel's system name."""
    try:
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "PRETTY_NAME":
                return value.strip().strip('"')
    except OSError:
        pass
    return platform.system()


def static_info(
    name: str,
    mode: NodeMode,
    *,
    peer_uri: str = "",
    migration_uri: str = "",
    zookeeper_member: str = "",
    cluster_address: str = "",
    storage_address: str = "",
) -> NodeStatic:
    """The static record a node registers with."""
    return NodeStatic(
        cluster_address=cluster_address,
        storage_address=storage_address,
        peer_uri=peer_uri,
        migration_uri=migration_uri,
        zookeeper_member=zookeeper_member,
        name=name,
        mode=mode,
        cpu_count=os.cpu_count() or 1,
        kernel=platform.release(),
        os=os_name(),
        arch=platform.machine(),
        pvc_version=pvc.__version__,
        registered=time.time(),
    )


def parse_meminfo(text: str) -> dict[str, int]:
    """Total, used and free memory in MiB from the text of /proc/meminfo."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0])  # KiB
    total = values.get("MemTotal", 0)
    free = values.get("MemAvailable", values.get("MemFree", 0))
    return {"total": total // 1024, "used": (total - free) // 1024, "free": free // 1024}


def network_devices(networks: NetworksSection) -> list[str]:
    """The devices configured for the upstream, cluster and storage networks (once each)."""
    devices = (networks.upstream.device, networks.cluster.device, networks.storage.device)
    return sorted({device for device in devices if device})


def sample_keepalive(
    now: float | None = None, hypervisor: dict | None = None, interfaces: dict[str, dict] | None = None
) -> Keepalive:
    """A keepalive with the current time, 1-minute load, memory, hypervisor figures and the
    figures of the configured network devices (see :mod:`pvc.node.netstats`)."""
    try:
        memory = parse_meminfo(Path("/proc/meminfo").read_text())
    except OSError:
        memory = {"total": 0, "used": 0, "free": 0}
    return Keepalive(
        timestamp=time.time() if now is None else now,
        load=round(os.getloadavg()[0], 2),
        memory=memory,
        interfaces=interfaces,
        **(hypervisor or {}),
    )
