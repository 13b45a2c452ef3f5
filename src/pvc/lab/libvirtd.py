"""One libvirtd per lab node, in the node's own namespaces.

libvirtd reads fixed paths (/etc/libvirt, /var/lib/libvirt, ...), so each node's anchor
bind-mounts the node's own directories over them; /run is already private. The daemon
listens on the node's cluster address; migrations go QEMU to QEMU on that address.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from pvc.lab.layout import LabLayout

TCP_PORT = 16509
MIGRATION_PORTS = (49152, 49215)
#: Node directory -> the path it stands in for inside the node.
BIND_MOUNTS = {
    "libvirt/etc": "/etc/libvirt",
    "libvirt/lib": "/var/lib/libvirt",
    "libvirt/log": "/var/log/libvirt",
    "libvirt/cache": "/var/cache/libvirt",
}


def binds(layout: LabLayout, node: str) -> list[tuple[Path, str]]:
    """(source, target) bind mounts the node's anchor sets up for libvirtd."""
    return [(layout.node_dir(node) / source, target) for source, target in BIND_MOUNTS.items()]


def prepare(layout: LabLayout, node: str) -> None:
    """Create the node's libvirt directories and write libvirtd.conf and qemu.conf."""
    for source, _ in binds(layout, node):
        source.mkdir(parents=True, exist_ok=True)
    etc = layout.node_dir(node) / "libvirt" / "etc"
    address = layout.cluster_ip(node)
    host_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"pvc-lab:{layout.directory}:{node}")
    (etc / "libvirtd.conf").write_text("\n".join([
        "listen_tls = 0",
        "listen_tcp = 1",
        f'listen_addr = "{address}"',
        f'tcp_port = "{TCP_PORT}"',
        'auth_tcp = "none"',
        'auth_unix_rw = "none"',
        'auth_unix_ro = "none"',
        'unix_sock_group = "root"',
        'unix_sock_rw_perms = "0770"',
        f'host_uuid = "{host_uuid}"',
        'log_outputs = "2:file:/var/log/libvirt/libvirtd.log"',
    ]) + "\n")  # fmt: skip
    (etc / "qemu.conf").write_text("\n".join([
        'user = "root"',
        'group = "root"',
        "dynamic_ownership = 0",
        "remember_owner = 0",
        'security_driver = "none"',
        "cgroup_controllers = [ ]",
        "namespaces = [ ]",
        'stdio_handler = "file"',
        f'migration_address = "{address}"',
        f'migration_host = "{address}"',
        f"migration_port_min = {MIGRATION_PORTS[0]}",
        f"migration_port_max = {MIGRATION_PORTS[1]}",
    ]) + "\n")  # fmt: skip


CAPABILITIES = "qemu/capabilities"


def seed_capabilities(layout: LabLayout, node: str, seed: Path) -> None:
    """Give a new node's libvirtd the QEMU capabilities probed by an earlier lab.

    Probing QEMU costs libvirtd several seconds at its first domain start; the result
    only depends on this machine's QEMU and libvirt, which libvirt checks itself.
    """
    if not seed.is_dir():
        return
    target = layout.node_dir(node) / "libvirt" / "cache" / CAPABILITIES
    target.mkdir(parents=True, exist_ok=True)
    for file in seed.glob("*.xml"):
        shutil.copy2(file, target / file.name)


def save_capabilities(layout: LabLayout, node: str, seed: Path) -> None:
    """Keep a node's probed QEMU capabilities for the next lab."""
    source = layout.node_dir(node) / "libvirt" / "cache" / CAPABILITIES
    files = list(source.glob("*.xml"))
    if files and not any(seed.glob("*.xml")):
        seed.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy2(file, seed / file.name)


def warm_up(uri_of_node: str) -> None:
    """Make libvirtd load (or probe) QEMU's capabilities now rather than at the first start."""
    import libvirt as libvirt_api

    conn = libvirt_api.open(uri_of_node)
    try:
        conn.getDomainCapabilities(None, "x86_64", None, "qemu", 0)
    finally:
        conn.close()


def command() -> list[str]:
    return ["/usr/sbin/libvirtd", "--listen", "-f", "/etc/libvirt/libvirtd.conf", "-p", "/run/libvirtd.pid"]


def socket_path(layout: LabLayout, node: str) -> Path:
    """libvirtd's unix socket as seen from the host."""
    return layout.node_dir(node) / "run" / "libvirt" / "libvirt-sock"


def uri(layout: LabLayout, node: str) -> str:
    """The node's libvirtd from the host or any other node (TCP on the cluster network)."""
    return f"qemu+tcp://{layout.cluster_ip(node)}:{TCP_PORT}/system"


def migration_uri(layout: LabLayout, node: str) -> str:
    """Where QEMU sends migration traffic for a domain moving to ``node``."""
    return f"tcp://{layout.cluster_ip(node)}"
