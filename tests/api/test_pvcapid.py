"""pvcapid as a real process: gunicorn, the node configuration, TLS with a self-signed pair."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from pvc import processes
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
    base = f"https://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/", verify=str(cert), timeout=1)
            break
        except requests.ConnectionError:
            assert processes.is_alive(ref), (tmp_path / "pvcapid.log").read_text()
            time.sleep(0.1)
    yield base, cert
    processes.terminate([ref])


def test_tls_and_keys_through_gunicorn(pvcapid):
    base, cert = pvcapid
    assert requests.get(f"{base}/", verify=str(cert), timeout=5).json() == {"message": "PVC API version 1.0"}
    refused = requests.get(f"{base}/status", verify=str(cert), timeout=5)
    assert refused.status_code == 401
    ok = requests.get(f"{base}/status", verify=str(cert), headers={"X-Api-Key": "secret-key"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["maintenance"] == "false"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{base}/", timeout=5)  # not trusted without the certificate
    plain = base.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{plain}/", timeout=5)


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
