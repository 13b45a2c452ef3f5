"""Certificates for libvirt's TLS listener and QEMU's TLS migration streams.

A cluster has its own certificate authority. Every node gets a server certificate
(its libvirtd and, during an incoming migration, its QEMU present it) and a client
certificate (its libvirtd presents it when it opens a peer for a migration, its QEMU
when it sends a migration stream). Both name the node in their subject
(``O=<cluster>, CN=<node>``) and carry the node's addresses and name as
subjectAltNames, which libvirt and QEMU check against the address they dial.

:func:`write_node_files` lays a node's files out as libvirt and QEMU look for them under
``/etc/pki`` (the layout ``virt-pki-validate`` checks)::

    CA/cacert.pem                         the cluster CA (libvirtd's ca_file)
    libvirt/servercert.pem                libvirtd's server certificate
    libvirt/private/serverkey.pem
    libvirt/clientcert.pem                libvirt's client certificate (peer connections)
    libvirt/private/clientkey.pem
    qemu/ca-cert.pem, server-cert.pem, server-key.pem, client-cert.pem, client-key.pem
                                          the same, named as QEMU's TLS directory wants them

``python3 -m pvc.hypervisor.pki`` makes a CA and node files from the command line (see
docs/nodes.md).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pvc.errors import PVCError

#: Validity of a new CA and of a new node certificate, in days.
CA_DAYS = 3650
NODE_DAYS = 825
#: Certificates start this long before their creation, for clocks a little behind.
BACKDATE = datetime.timedelta(hours=1)
#: File names in a CA directory made by :func:`save_ca`.
CA_CERT, CA_KEY = "cacert.pem", "cakey.pem"

Role = Literal["server", "client"]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PkiError(PVCError):
    """A certificate or key could not be made, read or written."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(cluster: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def node_dn(cluster: str, node: str) -> str:
    """The subject of a node's certificates as libvirt spells it (for ``tls_allowed_dn_list``).

    libvirt (GnuTLS) writes the attributes in certificate order, ``O=<cluster>,CN=<node>``
    (``virt-pki-query-dn`` shows it): RFC 4514's string of the reversed name.
    """
    return x509.Name(list(reversed(_name(cluster, node).rdns))).rfc4514_string()


def allowed_dn_list(cluster: str, nodes: list[str]) -> str:
    """The libvirtd.conf value that admits exactly these nodes' client certificates."""
    return "[" + ", ".join(f'"{node_dn(cluster, node)}"' for node in nodes) + "]"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def expiry(certificate: x509.Certificate) -> datetime.datetime:
    """When ``certificate`` expires (timezone-aware, UTC)."""
    aware = getattr(certificate, "not_valid_after_utc", None)  # cryptography >= 42
    return aware or certificate.not_valid_after.replace(tzinfo=datetime.UTC)


def make_ca(cluster: str, days: int = CA_DAYS) -> Issued:
    """A new self-signed CA for the cluster ``cluster``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cluster, f"{cluster} libvirt CA")
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def make_node_certificate(
    ca: Issued,
    cluster: str,
    node: str,
    addresses: list[str],
    role: Role,
    days: int = NODE_DAYS,
) -> Issued:
    """A server or client certificate for ``node``, signed by ``ca``.

    ``addresses`` (IP addresses; host names are accepted too) become subjectAltNames
    beside the node's name: a peer checks the server certificate against the address in
    the URI it dialled (``qemu+tls://<address>/system``, ``tcp://<address>``).
    """
    if not addresses:
        raise PkiError(f"a certificate for {node} needs at least one address")
    names: list[x509.GeneralName] = [x509.DNSName(node)]
    for address in addresses:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    key = ec.generate_private_key(ec.SECP256R1())
    purpose = ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(cluster, node))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + datetime.timedelta(days=days), expiry(ca.certificate)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # libvirt and QEMU check both bits on server and client certificates
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(certificate, key)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o755)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    tmp.replace(path)


def save_ca(ca: Issued, directory: Path) -> None:
    """Write the CA's certificate and (owner-only) key into ``directory``."""
    _write(directory / CA_CERT, ca.certificate_pem)
    _write(directory / CA_KEY, ca.key_pem, private=True)
    directory.chmod(0o700)


def _public(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_ca(directory: Path) -> Issued:
    """Read a CA written by :func:`save_ca`."""
    try:
        certificate = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    except OSError as error:
        raise PkiError(f"cannot read the CA in {directory}: {error.strerror}") from None
    except ValueError as error:
        raise PkiError(f"the CA in {directory} is not valid PEM: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _public(key.public_key()) != _public(
        certificate.public_key()
    ):
        raise PkiError(f"{directory / CA_KEY} is not the key of {directory / CA_CERT}")
    return Issued(certificate, key)


#: Where each file of a node goes, relative to its /etc/pki.
NODE_FILES = {
    "ca": ["CA/cacert.pem", "qemu/ca-cert.pem"],
    "server": ["libvirt/servercert.pem", "qemu/server-cert.pem"],
    "server_key": ["libvirt/private/serverkey.pem", "qemu/server-key.pem"],
    "client": ["libvirt/clientcert.pem", "qemu/client-cert.pem"],
    "client_key": ["libvirt/private/clientkey.pem", "qemu/client-key.pem"],
}


def write_node_files(
    root: Path, ca: Issued, cluster: str, node: str, addresses: list[str], days: int = NODE_DAYS
) -> None:
    """Make ``node``'s server and client certificates and write them under ``root``.

    ``root`` stands for the node's ``/etc/pki``; keys are readable by their owner only.
    """
    server = make_node_certificate(ca, cluster, node, addresses, "server", days)
    client = make_node_certificate(ca, cluster, node, addresses, "client", days)
    contents = {
        "ca": ca.certificate_pem,
        "server": server.certificate_pem,
        "server_key": server.key_pem,
        "client": client.certificate_pem,
        "client_key": client.key_pem,
    }
    for what, relative_paths in NODE_FILES.items():
        for relative in relative_paths:
            _write(root / relative, contents[what], private=what.endswith("_key"))
    (root / "qemu").chmod(0o700)  # holds QEMU's keys beside the certificates


def cluster_of(ca: Issued) -> str:
    """The cluster name a CA made by :func:`make_ca` carries (its subject's O)."""
    names = ca.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if not names:
        raise PkiError("the CA's subject has no organisation (O=): not a PVC cluster CA")
    return str(names[0].value)


# -- command line ---------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Certificates for libvirt TLS between a cluster's nodes (see docs/nodes.md)."""


@cli.command("ca")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--cluster", required=True, help="The cluster's name (the certificates' O=).")
@click.option("--days", default=CA_DAYS, show_default=True, type=click.IntRange(1, 36500))
def ca_command(directory: Path, cluster: str, days: int) -> None:
    """Make a new CA in DIR (cacert.pem, and cakey.pem readable by its owner only)."""
    if (directory / CA_KEY).exists():
        raise click.ClickException(f"{directory / CA_KEY} exists; refusing to replace a CA")
    save_ca(make_ca(cluster, days), directory)
    click.echo(f"CA of cluster {cluster} written to {directory}; keep {CA_KEY} off the nodes")


@cli.command("node")
@click.option("--ca", "ca_directory", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", required=True, help="The node's name (node.name in its pvc.conf).")
@click.option(
    "--address",
    "addresses",
    required=True,
    multiple=True,
    help="An address peers dial (cluster address, migration address); repeatable.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to fill; its contents go to the node's /etc/pki.",
)
@click.option("--days", default=NODE_DAYS, show_default=True, type=click.IntRange(1, 36500))
def node_command(ca_directory: Path, name: str, addresses: tuple[str, ...], out: Path, days: int) -> None:
    """Make NAME's server and client certificates, laid out as /etc/pki."""
    try:
        ca = load_ca(ca_directory)
        cluster = cluster_of(ca)
        write_node_files(out, ca, cluster, name, list(addresses), days)
    except PkiError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{name}: certificates for {', '.join(addresses)} written to {out}")
    click.echo(f"its subject (for tls_allowed_dn_list): {node_dn(cluster, name)}")


@cli.command("dn-list")
@click.option("--ca", "ca_directory", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.argument("nodes", nargs=-1, required=True)
def dn_list_command(ca_directory: Path, nodes: tuple[str, ...]) -> None:
    """Print the libvirtd.conf line admitting exactly NODES' client certificates."""
    try:
        cluster = cluster_of(load_ca(ca_directory))
    except PkiError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"tls_allowed_dn_list = {allowed_dn_list(cluster, list(nodes))}")


if __name__ == "__main__":
    cli()
