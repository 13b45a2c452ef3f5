"""pvcapid as a real process: gunicorn, the node configuration, TLS with a self-signed pair."""

from __future__ import annotations

import os
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
        "token": [{"token": API_KEY, "description": "test"}],
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
    ok = client(replace(endpoint, api_key=API_KEY)).get("/status")
    assert ok.status == 200 and ok.data["maintenance"] == "false"
    with pytest.raises(ApiUnreachable, match="TLS error"):  # only an SSLError reads so
        client(endpoint, verify=True).get("/")  # not trusted without the certificate
    with pytest.raises(ApiUnreachable) as plain:
        client(replace(endpoint, scheme="http")).get("/")
    assert isinstance(plain.value.__cause__, requests.ConnectionError)


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
