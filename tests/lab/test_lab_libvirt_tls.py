"""The lab nodes' libvirtd peer listener: TLS only, and only the cluster's nodes get in.

Each node's libvirtd listens on its cluster address with TLS; a client must present a
certificate of the lab's CA whose subject names one of the lab's nodes. Migration
streams must be TLS too (qemu.conf ``migrate_tls_force``).
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
from pathlib import Path

import libvirt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pvc.hypervisor import pki
from pvc.hypervisor.adapter import Hypervisor
from pvc.hypervisor.errors import HypervisorError
from pvc.lab import demo, libvirtd
from pvc.lab.layout import LabLayout
from tests.helpers import wait_for
from tests.lab.lab_run import lab_up

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

PREFIX, NET_INDEX = "pvct", 77
#: libvirt's plain TCP port, which the lab's libvirtd must not listen on.
PLAIN_TCP_PORT = 16509


@pytest.fixture(scope="module")
def lab():
    with lab_up("pvc-lab-tls-", PREFIX, NET_INDEX, ceph=False) as layout:
        yield layout


def client_dir(directory: Path, ca_pem: bytes, client: pki.Issued) -> Path:
    """A libvirt ``pkipath`` directory: the CA to trust and the client's certificate."""
    directory.mkdir(parents=True)
    (directory / "cacert.pem").write_bytes(ca_pem)
    (directory / "clientcert.pem").write_bytes(client.certificate_pem)
    (directory / "clientkey.pem").write_bytes(client.key_pem)
    return directory


def node_client(layout: LabLayout, node: str) -> pki.Issued:
    """The client certificate and key the lab gave ``node``."""
    files = libvirtd.pki_dir(layout, node) / "libvirt"
    key = serialization.load_pem_private_key((files / "private/clientkey.pem").read_bytes(), None)
    return pki.Issued(x509.load_pem_x509_certificate((files / "clientcert.pem").read_bytes()), key)  # type: ignore[arg-type]


def open_with(layout: LabLayout, node: str, pkipath: Path) -> libvirt.virConnect:
    return libvirt.open(f"{libvirtd.peer_uri(layout, node)}?pkipath={pkipath}")


def tls_client(ca_pem: bytes, client: pki.Issued | None, directory: Path) -> ssl.SSLContext:
    """A plain TLS client trusting ``ca_pem``, presenting ``client`` (if any)."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    if client is not None:
        directory.mkdir(parents=True)
        (directory / "cert.pem").write_bytes(client.certificate_pem)
        (directory / "key.pem").write_bytes(client.key_pem)
        context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


def server_hangs_up(layout: LabLayout, node: str, context: ssl.SSLContext) -> bool:
    """Whether the node's libvirtd ends a TLS session right after the handshake (refused),
    rather than waiting for the client's first request (admitted)."""
    with socket.create_connection((layout.cluster_ip(node), libvirtd.TLS_PORT), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=layout.cluster_ip(node)) as tls:
                tls.settimeout(2)
                return tls.recv(1) == b""
        except TimeoutError:
            return False
        except (ssl.SSLError, ConnectionResetError):
            return True


def test_peer_listener_is_tls_only_and_admits_only_the_cluster_nodes(lab: LabLayout, tmp_path: Path):
    ca = pki.load_ca(libvirtd.ca_dir(lab))
    log = lab.node_dir("hv2") / "libvirt" / "log" / "libvirtd.log"

    # no plain TCP listener
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((lab.cluster_ip("hv2"), PLAIN_TCP_PORT), timeout=5).close()
    with pytest.raises(libvirt.libvirtError, match="Connection refused"):
        libvirt.open(f"qemu+tcp://{lab.cluster_ip('hv2')}/system")

    # a node's client certificate (what hv1's libvirtd presents for a migration) is admitted
    own = node_client(lab, "hv1")
    conn = open_with(lab, "hv2", client_dir(tmp_path / "hv1", ca.certificate_pem, own))
    assert conn.getHostname() == "hv2"
    conn.close()

    # without a client certificate the server ends the session (with hv1's, it waits for a request)
    assert server_hangs_up(lab, "hv2", tls_client(ca.certificate_pem, None, tmp_path / "none"))
    assert not server_hangs_up(lab, "hv2", tls_client(ca.certificate_pem, own, tmp_path / "own"))

    # a certificate naming hv1 from another CA is refused (libvirt's own client would not
    # even send it: it checks its certificate against the CA it trusts first)
    other_ca = pki.make_ca(lab.cluster_name)
    forged = pki.make_node_certificate(other_ca, lab.cluster_name, "hv1", [lab.cluster_ip("hv1")], "client")
    seen = len(log.read_text())
    assert server_hangs_up(lab, "hv2", tls_client(ca.certificate_pem, forged, tmp_path / "forged"))
    wait_for(lambda: "Failed to verify peer's certificate" in log.read_text()[seen:], timeout=5)
    with pytest.raises(libvirt.libvirtError):
        open_with(lab, "hv2", client_dir(tmp_path / "forged-dir", ca.certificate_pem, forged))

    # a certificate of the lab's CA whose subject is not one of the nodes is refused
    stranger = pki.make_node_certificate(ca, lab.cluster_name, "intruder", ["10.9.9.9"], "client")
    seen = len(log.read_text())
    with pytest.raises(libvirt.libvirtError):
        open_with(lab, "hv2", client_dir(tmp_path / "stranger", ca.certificate_pem, stranger))
    wait_for(lambda: "is not on the list of allowed clients" in log.read_text()[seen:], timeout=5)

    # the local sockets are root's only
    for name in ("libvirt-sock", "libvirt-sock-ro"):
        path = libvirtd.socket_path(lab, "hv2").with_name(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, name


def test_migration_streams_must_be_tls(lab: LabLayout):
    source = Hypervisor(libvirtd.uri(lab, "hv1")).connect()
    target = Hypervisor(libvirtd.uri(lab, "hv2")).connect()
    demo.serial_log(lab, "tlsvm")  # makes the console directory
    source.define(demo.direct_guest_xml(lab, "tlsvm"))
    source.start("tlsvm")
    try:
        with pytest.raises(HypervisorError, match="VIR_MIGRATE_TLS"):
            source.migrate(
                "tlsvm",
                libvirtd.peer_uri(lab, "hv2"),
                migration_uri=libvirtd.migration_uri(lab, "hv2"),
                tls=False,
            )
        assert source.state("tlsvm") == "running"
        source.migrate(
            "tlsvm", libvirtd.peer_uri(lab, "hv2"), migration_uri=libvirtd.migration_uri(lab, "hv2")
        )
        assert target.state("tlsvm") == "running" and not source.exists("tlsvm")
    finally:
        for side in (source, target):
            if side.exists("tlsvm"):
                if side.state("tlsvm") == "running":
                    side.destroy("tlsvm")
                side.undefine("tlsvm")
