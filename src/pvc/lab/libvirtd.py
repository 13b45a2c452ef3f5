"""One libvirtd per lab node, in the node's own namespaces.

libvirtd reads fixed paths (/etc/libvirt, /var/lib/libvirt, /etc/pki, ...), so each
node's anchor bind-mounts the node's own directories over them; /run is already private.

The daemon listens on the node's cluster address with TLS only: peers must present a
client certificate of the lab's CA whose subject names one of the lab's nodes. Live
migrations go QEMU to QEMU on that address, over TLS with the same certificates. The
host's tools reach a node's libvirtd through its unix socket (root only).
"""

from __future__ import annotations

import shutil
import socket
import uuid
from pathlib import Path

from pvc.hypervisor import pki
from pvc.lab.layout import LabLayout

#: libvirt's default TLS port, so peer URIs need none.
TLS_PORT = 16514
MIGRATION_PORTS = (49152, 49215)
#: Where the nodes' /etc/pki is mounted: the mount point must exist on the host.
PKI_MOUNT = "/etc/pki"
#: Node directory -> the path it stands in for inside the node.
BIND_MOUNTS = {
    "libvirt/etc": "/etc/libvirt",
    "libvirt/lib": "/var/lib/libvirt",
    "libvirt/log": "/var/log/libvirt",
    "libvirt/cache": "/var/cache/libvirt",
    "pki": PKI_MOUNT,
}


def binds(layout: LabLayout, node: str) -> list[tuple[Path, str]]:
    """(source, target) bind mounts the node's anchor sets up for libvirtd."""
    return [(layout.node_dir(node) / source, target) for source, target in BIND_MOUNTS.items()]


def ca_dir(layout: LabLayout) -> Path:
    """The lab's certificate authority (certificate and key)."""
    return layout.directory / "pki"


def pki_dir(layout: LabLayout, node: str) -> Path:
    """The node's /etc/pki as seen from the host."""
    return layout.node_dir(node) / "pki"


def make_certificates(layout: LabLayout) -> None:
    """A new CA for the lab, and every node's server and client certificates."""
    Path(PKI_MOUNT).mkdir(mode=0o755, exist_ok=True)  # an empty mount point, left in place
    ca = pki.make_ca(layout.cluster_name)
    pki.save_ca(ca, ca_dir(layout))
    for node in layout.node_names:
        shutil.rmtree(pki_dir(layout, node), ignore_errors=True)
        pki.write_node_files(pki_dir(layout, node), ca, layout.cluster_name, node, [layout.cluster_ip(node)])


def prepare(layout: LabLayout, node: str) -> None:
    """Create the node's libvirt directories and write libvirtd.conf and qemu.conf.

    The node's certificates (:func:`make_certificates`) must exist already.
    """
    for source, _ in binds(layout, node):
        source.mkdir(parents=True, exist_ok=True)
    etc = layout.node_dir(node) / "libvirt" / "etc"
    address = layout.cluster_ip(node)
    host_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"pvc-lab:{layout.directory}:{node}")
    (etc / "libvirtd.conf").write_text("\n".join([
        "listen_tls = 1",
        "listen_tcp = 0",
        f'listen_addr = "{address}"',
        f'tls_port = "{TLS_PORT}"',
        # the client certificate is the authentication: signed by the lab's CA, naming a node
        'auth_tls = "none"',
        "tls_no_verify_certificate = 0",
        "tls_no_sanity_certificate = 0",
        f"tls_allowed_dn_list = {pki.allowed_dn_list(layout.cluster_name, layout.node_names)}",
        'auth_unix_rw = "none"',
        'auth_unix_ro = "none"',
        'unix_sock_group = "root"',
        'unix_sock_rw_perms = "0700"',
        'unix_sock_ro_perms = "0700"',
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
        # migration streams: TLS with the node's certificates, both ends verified
        f'default_tls_x509_cert_dir = "{PKI_MOUNT}/qemu"',
        f'migrate_tls_x509_cert_dir = "{PKI_MOUNT}/qemu"',
        "default_tls_x509_verify = 1",
        "migrate_tls_x509_verify = 1",
        "migrate_tls_force = 1",
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


def accepts(layout: LabLayout, node: str) -> bool:
    """True when the node's libvirtd accepts connections on its unix socket (a socket file
    left by a killed libvirtd is not enough)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(socket_path(layout, node)))
        except OSError:
            return False
    return True


def uri(layout: LabLayout, node: str) -> str:
    """The node's libvirtd from the host (its unix socket)."""
    return f"qemu+unix:///system?socket={socket_path(layout, node)}"


def peer_uri(layout: LabLayout, node: str) -> str:
    """The node's libvirtd from the other nodes (TLS on the cluster network), for migrations."""
    return f"qemu+tls://{layout.cluster_ip(node)}/system"


def migration_uri(layout: LabLayout, node: str) -> str:
    """Where QEMU sends migration traffic for a domain moving to ``node``."""
    return f"tcp://{layout.cluster_ip(node)}"
