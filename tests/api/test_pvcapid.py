"""pvcapid as a real process: gunicorn, the node configuration, TLS with a self-signed pair."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import yaml

from pvc import processes
from pvc.client.connections import Connection
from pvc.client.errors import ApiUnreachable
from pvc.client.http import ApiClient
from pvc.lab import zookeeper
from pvc.state.schema import ensure_schema
from tests.helpers import node_config_data


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "api.crt", directory / "api.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def pvcapid(tmp_path, zk_hosts, store):
    ensure_schema(store)
    cert, key = _self_signed(tmp_path)
    port = zookeeper.free_port()
    data = node_config_data("n1", ["n1"], zk_hosts)
    data["api"] = {
        "listen": {"address": "127.0.0.1", "port": port},
        "ssl": {"enabled": True, "certificate": str(cert), "private_key": str(key)},
        "authentication": {"enabled": True, "source": "token"},
        "token": [{"token": "secret-key", "description": "test"}],
    }
    config = tmp_path / "pvc.conf"
    config.write_text(yaml.safe_dump(data))
    ref = processes.spawn(
        "pvcapid",
        [sys.executable, "-m", "pvc.api.daemon"],
        tmp_path / "pvcapid.log",
        env={**os.environ, "PVC_CONFIG_FILE": str(config)},
    )
    endpoint = Connection(name="pvcapid", host="127.0.0.1", port=port, scheme="https")
    probe = ApiClient(endpoint, verify=str(cert), timeout=(1, 1), get_attempts=1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            probe.get("/")
            break
        except ApiUnreachable:
            assert processes.is_alive(ref), (tmp_path / "pvcapid.log").read_text()
            time.sleep(0.1)
    yield endpoint, cert
    processes.terminate([ref])


def test_tls_and_keys_through_gunicorn(pvcapid):
    endpoint, cert = pvcapid

    def client(connection: Connection, verify: bool | str = str(cert)) -> ApiClient:
        return ApiClient(connection, verify=verify, timeout=(5, 5), get_attempts=1)

    assert client(endpoint).get("/").data == {"message": "PVC API version 1.0"}
    refused = client(endpoint).get("/status")
    assert refused.status == 401
    ok = client(replace(endpoint, api_key="secret-key")).get("/status")
    assert ok.status == 200 and ok.data["maintenance"] == "false"
    with pytest.raises(ApiUnreachable, match="TLS error"):  # only an SSLError reads so
        client(endpoint, verify=True).get("/")  # not trusted without the certificate
    with pytest.raises(ApiUnreachable) as plain:
        client(replace(endpoint, scheme="http")).get("/")
    assert isinstance(plain.value.__cause__, requests.ConnectionError)


def test_a_huge_body_is_refused_unread_and_the_connection_closed(pvcapid):
    """A 300 MB POST to a route without arguments: 413 at once, and the server stops reading."""
    endpoint, cert = pvcapid
    context = ssl.create_default_context(cafile=str(cert))
    size = 300 * 1024 * 1024
    head = (
        "POST /api/v1/logout HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {size}\r\n\r\n"
    )
    with (
        socket.create_connection(("127.0.0.1", endpoint.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(head.encode() + b"a" * 65536)
        started = time.monotonic()
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        headers, _, body = reply.partition(b"\r\n\r\n")
        length = int(
            next(line for line in headers.split(b"\r\n") if line.lower().startswith(b"content-length")).split(
                b":"
            )[1]
        )
        while len(body) < length:
            body += sock.recv(65536)
        assert time.monotonic() - started < 5
        assert headers.startswith(b"HTTP/1.1 413") and "larger than" in json.loads(body)["message"]
        sent = 65536
        with pytest.raises(OSError):  # the server closes the connection instead of reading on
            while sent < size:
                sock.sendall(b"a" * 1024 * 1024)
                sent += 1024 * 1024
        assert sent < 64 * 1024 * 1024


def test_bad_config_exits_2_with_one_line(tmp_path):
    config = tmp_path / "pvc.conf"
    config.write_text("node: {name: n1}\n")
    result = subprocess.run(
        [sys.executable, "-m", "pvc.api.daemon"],
        capture_output=True,
        text=True,
        env={**os.environ, "PVC_CONFIG_FILE": str(config)},
        timeout=30,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "required key is missing" in result.stderr


def test_a_credential_file_others_can_read_stops_pvcapid_before_it_serves(tmp_path):
    auth_file = tmp_path / "zookeeper.auth"
    auth_file.write_text("pvc:a-secret-password\n")
    auth_file.chmod(0o644)
    data = node_config_data("n1", ["n1"], "127.0.0.1:9")
    data["zookeeper"]["auth_file"] = str(auth_file)
    config = tmp_path / "pvc.conf"
    config.write_text(yaml.safe_dump(data))
    result = subprocess.run(
        [sys.executable, "-m", "pvc.api.daemon"],
        capture_output=True,
        text=True,
        env={**os.environ, "PVC_CONFIG_FILE": str(config)},
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"pvcapid: zookeeper.auth_file: {auth_file} is accessible to every user (mode 0644); "
        "make it 0600 or 0640"
    )
