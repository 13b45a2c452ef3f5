"""pvcapid as a real process: gunicorn, the node configuration, TLS with a self-signed pair."""

from __future__ import annotations

import json
import os
import pwd
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
from tests.helpers import node_config_data, reachable_dir

API_KEY = "pvcapid-test-key-0123456789abcdef0123"


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


def _start(directory: Path, zk_hosts: str, api: dict) -> tuple[processes.ProcessRef, int]:
    """Start pvcapid (as root, like the node daemon does) with ``api`` on a free loopback port."""
    port = zookeeper.free_port()
    data = node_config_data("n1", ["n1"], zk_hosts, state_dir=str(directory / "state"))
    data["api"] = {"listen": {"address": "127.0.0.1", "port": port}, **api}
    config = directory / "pvc.conf"
    config.write_text(yaml.safe_dump(data))
    ref = processes.spawn(
        "pvcapid",
        [sys.executable, "-m", "pvc.api.daemon"],
        directory / "pvcapid.log",
        env={**os.environ, "PVC_CONFIG_FILE": str(config)},
    )
    return ref, port


def _wait_serving(ref: processes.ProcessRef, probe: ApiClient) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            probe.get("/")
            return
        except ApiUnreachable:
            assert processes.is_alive(ref), Path(ref.log).read_text()
            time.sleep(0.1)
    raise AssertionError("pvcapid did not answer within 30 s")


def _uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uids of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(value) for value in line.split()[1:]}
    raise AssertionError(f"no Uid line for {pid}")


@pytest.fixture
def pvcapid(zk_hosts, store):
    ensure_schema(store)
    with reachable_dir() as directory:
        cert, key = _self_signed(directory)
        key.chmod(0o600)  # root-only: pvcapid loads it before giving up root
        api = {
            "ssl": {"enabled": True, "certificate": str(cert), "private_key": str(key)},
            "token": [{"token": API_KEY, "description": "test"}],
        }
        ref, port = _start(directory, zk_hosts, api)
        endpoint = Connection(name="pvcapid", host="127.0.0.1", port=port, scheme="https")
        _wait_serving(ref, ApiClient(endpoint, verify=str(cert), timeout=(1, 1), get_attempts=1))
        yield endpoint, cert, ref
        processes.terminate([ref])


def test_tls_and_keys_through_gunicorn(pvcapid):
    endpoint, cert, _ = pvcapid

    def client(connection: Connection, verify: bool | str = str(cert)) -> ApiClient:
        return ApiClient(connection, verify=verify, timeout=(5, 5), get_attempts=1)

    assert client(endpoint).get("/").data == {"message": "PVC API version 1.0"}
    refused = client(endpoint).get("/status")
    assert refused.status == 401
    ok = client(replace(endpoint, api_key=API_KEY)).get("/status")
    assert ok.status == 200 and ok.data["maintenance"] == "false"
    with pytest.raises(ApiUnreachable, match="TLS error"):  # only an SSLError reads so
        client(endpoint, verify=True).get("/")  # not trusted without the certificate
    with pytest.raises(ApiUnreachable) as plain:
        client(replace(endpoint, scheme="http")).get("/")
    assert isinstance(plain.value.__cause__, requests.ConnectionError)


def test_a_huge_body_is_refused_unread_and_the_connection_closed(pvcapid):
    """A 300 MB POST to a route without arguments: 413 at once, and the server stops reading."""
    endpoint, cert, _ = pvcapid
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


def test_pvcapid_gives_up_root(pvcapid):
    _, _, ref = pvcapid
    pvcapi = pwd.getpwnam("pvcapi").pw_uid
    children = Path(f"/proc/{ref.pid}/task/{ref.pid}/children").read_text().split()
    assert children, "gunicorn has no worker"
    for pid in [ref.pid, *map(int, children)]:  # the arbiter and its worker
        assert _uids(pid) == {pvcapi}, pid


def _run_pvcapid(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pvc.api.daemon"],
        capture_output=True,
        text=True,
        env={**os.environ, "PVC_CONFIG_FILE": str(config)},
        timeout=30,
    )


def test_a_credential_file_others_can_read_stops_pvcapid_before_it_serves(tmp_path):
    auth_file = tmp_path / "zookeeper.auth"
    auth_file.write_text("pvc:a-secret-password\n")
    auth_file.chmod(0o644)
    data = node_config_data("n1", ["n1"], "127.0.0.1:9")
    data["zookeeper"]["auth_file"] = str(auth_file)
    config = tmp_path / "pvc.conf"
    config.write_text(yaml.safe_dump(data))
    result = _run_pvcapid(config)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"pvcapid: zookeeper.auth_file: {auth_file} is accessible to every user (mode 0644); "
        "make it 0600 or 0640"
    )


def test_no_key_configured_exits_2_with_one_line(tmp_path):
    data = node_config_data("n1", ["n1"], "127.0.0.1:1")
    del data["api"]  # authentication is on by default
    config = tmp_path / "pvc.conf"
    config.write_text(yaml.safe_dump(data))
    result = _run_pvcapid(config)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "api.token: authentication is enabled" in result.stderr


def test_files_the_api_user_cannot_read_stop_the_start(zk_hosts):
    with reachable_dir() as directory:
        ceph_conf = directory / "ceph.conf"
        ceph_conf.write_text("[global]\n")
        ceph_conf.chmod(0o600)  # root only
        data = node_config_data(
            "n1", ["n1"], zk_hosts, state_dir=str(directory / "state"), storage={"ceph_conf": str(ceph_conf)}
        )
        config = directory / "pvc.conf"
        config.write_text(yaml.safe_dump(data))
        result = _run_pvcapid(config)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"user 'pvcapi' cannot read what the API needs: storage.ceph_conf: {ceph_conf}" in result.stderr


def test_open_api_warns_at_start(zk_hosts, store):
    ensure_schema(store)
    with reachable_dir() as directory:
        ref, port = _start(directory, zk_hosts, {"authentication": {"enabled": False}})
        try:
            client = ApiClient(Connection(name="open", host="127.0.0.1", port=port), timeout=(1, 5))
            _wait_serving(ref, client)
            assert client.get("/status").status == 200  # no key needed, as configured
            log = Path(ref.log).read_text()
        finally:
            processes.terminate([ref])
    assert "WARNING pvc.api: API authentication is DISABLED" in log
    assert "WARNING pvc.api: TLS is off" in log


def test_default_bind_is_the_upstream_floating_address():
    from pvc.api.daemon import _Server
    from pvc.config import parse_config

    config = parse_config(node_config_data("n1", ["n1"], "127.0.0.1:1"))
    assert _Server(config, None).cfg.bind == ["10.100.0.250:7370"]
