"""The cluster CA and node certificates for libvirt TLS (pvc.hypervisor.pki)."""

from __future__ import annotations

import ipaddress
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pvc.hypervisor import pki


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.make_ca("prod1")


def verify_signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> None:
    issuer.public_key().verify(  # type: ignore[call-arg]
        certificate.signature,
        certificate.tbs_certificate_bytes,
        ec.ECDSA(certificate.signature_hash_algorithm),
    )


def test_ca_is_a_self_signed_ca_for_signing_certificates_only(ca: pki.Issued):
    cert = ca.certificate
    assert cert.subject == cert.issuer
    verify_signed_by(cert, cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert pki.cluster_of(ca) == "prod1"


@pytest.mark.parametrize(
    ("role", "purpose"),
    [("server", ExtendedKeyUsageOID.SERVER_AUTH), ("client", ExtendedKeyUsageOID.CLIENT_AUTH)],
)
def test_node_certificate_names_the_node_and_its_addresses_and_is_signed_by_the_ca(
    ca: pki.Issued, role: pki.Role, purpose: x509.ObjectIdentifier
):
    issued = pki.make_node_certificate(ca, "prod1", "hv2", ["10.0.0.2", "10.9.0.2", "hv2.example"], role)
    cert = issued.certificate
    verify_signed_by(cert, ca.certificate)
    assert cert.issuer == ca.certificate.subject
    assert pki.node_dn("prod1", "hv2") == "O=prod1,CN=hv2"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.2"),
        ipaddress.ip_address("10.9.0.2"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["hv2", "hv2.example"]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [purpose]
    assert pki.expiry(cert) <= pki.expiry(ca.certificate)
    assert issued.key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_a_certificate_of_another_ca_does_not_verify_against_ours(ca: pki.Issued):
    other = pki.make_ca("prod1")  # same name, different key
    stranger = pki.make_node_certificate(other, "prod1", "hv1", ["10.0.0.1"], "client")
    with pytest.raises(InvalidSignature):
        verify_signed_by(stranger.certificate, ca.certificate)


def test_a_node_certificate_needs_an_address(ca: pki.Issued):
    with pytest.raises(pki.PkiError, match="at least one address"):
        pki.make_node_certificate(ca, "prod1", "hv1", [], "server")


def test_node_files_are_laid_out_as_etc_pki_with_private_keys(ca: pki.Issued, tmp_path: Path):
    pki.write_node_files(tmp_path, ca, "prod1", "hv1", ["10.0.0.1"])
    expected = {relative for paths in pki.NODE_FILES.values() for relative in paths}
    assert {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.pem")} == expected
    for relative in expected:
        mode = stat.S_IMODE((tmp_path / relative).stat().st_mode)
        assert mode == (0o600 if "key" in relative else 0o644), relative
    assert stat.S_IMODE((tmp_path / "libvirt/private").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "qemu").stat().st_mode) == 0o700
    assert (tmp_path / "CA/cacert.pem").read_bytes() == ca.certificate_pem
    assert (tmp_path / "qemu/server-cert.pem").read_bytes() == (
        tmp_path / "libvirt/servercert.pem"
    ).read_bytes()
    for cert_file, key_file in [
        ("libvirt/servercert.pem", "libvirt/private/serverkey.pem"),
        ("libvirt/clientcert.pem", "libvirt/private/clientkey.pem"),
    ]:
        cert = x509.load_pem_x509_certificate((tmp_path / cert_file).read_bytes())
        key = serialization.load_pem_private_key((tmp_path / key_file).read_bytes(), None)
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
        verify_signed_by(cert, ca.certificate)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_openssl_accepts_the_chain_for_each_purpose(ca: pki.Issued, tmp_path: Path):
    pki.write_node_files(tmp_path, ca, "prod1", "hv1", ["10.0.0.1"])

    def verify(purpose: str, cert: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["openssl", "verify", "-x509_strict", "-purpose", purpose, *extra,
             "-CAfile", str(tmp_path / "CA/cacert.pem"), str(tmp_path / cert)],
            capture_output=True, text=True,
        )  # fmt: skip

    assert verify("sslserver", "libvirt/servercert.pem", "-verify_ip", "10.0.0.1").returncode == 0
    assert verify("sslclient", "libvirt/clientcert.pem").returncode == 0
    assert verify("sslserver", "libvirt/servercert.pem", "-verify_ip", "10.0.0.9").returncode != 0
    assert verify("sslserver", "libvirt/clientcert.pem").returncode != 0  # a client is no server


@pytest.mark.skipif(shutil.which("virt-pki-query-dn") is None, reason="needs libvirt-clients")
def test_node_dn_is_spelled_as_libvirt_compares_it(ca: pki.Issued, tmp_path: Path):
    for cluster in ("prod1", "odd, name"):
        pki.write_node_files(tmp_path / cluster, ca, cluster, "hv1", ["10.0.0.1"])
        query = ["virt-pki-query-dn", str(tmp_path / cluster / "libvirt/clientcert.pem")]
        shown = subprocess.run(query, capture_output=True, text=True, check=True).stdout.strip()
        assert shown == pki.node_dn(cluster, "hv1")
    assert pki.allowed_dn_list("prod1", ["hv1", "hv2"]) == '["O=prod1,CN=hv1", "O=prod1,CN=hv2"]'


def test_ca_round_trips_and_a_foreign_key_is_refused(ca: pki.Issued, tmp_path: Path):
    pki.save_ca(ca, tmp_path / "ca")
    assert stat.S_IMODE((tmp_path / "ca" / pki.CA_KEY).stat().st_mode) == 0o600
    loaded = pki.load_ca(tmp_path / "ca")
    assert loaded.certificate == ca.certificate
    (tmp_path / "ca" / pki.CA_KEY).write_bytes(pki.make_ca("x").key_pem)
    with pytest.raises(pki.PkiError, match="is not the key of"):
        pki.load_ca(tmp_path / "ca")
    with pytest.raises(pki.PkiError, match="cannot read the CA"):
        pki.load_ca(tmp_path / "nothing")


def test_command_line_makes_a_ca_and_node_files(tmp_path: Path):
    runner = CliRunner()
    made = runner.invoke(pki.cli, ["ca", "--dir", str(tmp_path / "ca"), "--cluster", "prod1"])
    assert made.exit_code == 0, made.output
    again = runner.invoke(pki.cli, ["ca", "--dir", str(tmp_path / "ca"), "--cluster", "prod1"])
    assert again.exit_code != 0 and "refusing to replace" in again.output
    node = runner.invoke(
        pki.cli,
        ["node", "--ca", str(tmp_path / "ca"), "--name", "hv3", "--address", "10.0.0.3",
         "--address", "10.1.0.3", "--out", str(tmp_path / "hv3")],
    )  # fmt: skip
    assert node.exit_code == 0, node.output
    assert "O=prod1,CN=hv3" in node.output
    cert = x509.load_pem_x509_certificate((tmp_path / "hv3/libvirt/servercert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.3", "10.1.0.3"]
    listed = runner.invoke(pki.cli, ["dn-list", "--ca", str(tmp_path / "ca"), "hv1", "hv3"])
    assert listed.output.strip() == 'tls_allowed_dn_list = ["O=prod1,CN=hv1", "O=prod1,CN=hv3"]'
    missing = runner.invoke(pki.cli, ["node", "--ca", str(tmp_path / "none"), "--name", "hv1",
                                      "--address", "10.0.0.1", "--out", str(tmp_path / "x")])  # fmt: skip
    assert missing.exit_code != 0 and "cannot read the CA" in missing.output


def test_hash_is_sha256(ca: pki.Issued):
    assert isinstance(ca.certificate.signature_hash_algorithm, hashes.SHA256)
