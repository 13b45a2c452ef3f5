"""The ZooKeeper credential: zookeeper.auth and zookeeper.auth_file, read at daemon start."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pvc.config import DEFAULT_ZOOKEEPER_AUTH_FILE, parse_config, read_credential_file
from pvc.errors import ConfigError
from pvc.lab.zookeeper import write_credential
from tests.helpers import node_config_data

SECRET = "s3cret-Value:with-colon"


def section(**zookeeper):
    data = node_config_data("n1", ["n1"], "10.0.0.1:2181", keepalive_interval=1, session_timeout=4)
    data["zookeeper"].update(zookeeper)
    return parse_config(data).zookeeper


def auth_file(tmp_path: Path, text: str = f"pvc:{SECRET}\n", mode: int = 0o600) -> Path:
    path = tmp_path / "zookeeper.auth"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_digest_is_the_default_with_a_default_file():
    data = node_config_data("n1", ["n1"], "10.0.0.1:2181", keepalive_interval=1, session_timeout=4)
    del data["zookeeper"]["auth_file"]
    zookeeper = parse_config(data).zookeeper
    assert zookeeper.auth == "digest"
    assert str(zookeeper.auth_file) == DEFAULT_ZOOKEEPER_AUTH_FILE


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400])
def test_the_credential_is_read_and_its_password_never_shown(tmp_path, mode):
    credential = section(auth_file=str(auth_file(tmp_path, mode=mode))).load_credential()
    assert credential == ("pvc", SECRET)  # a password may hold ':' (split at the first)
    user, password = credential
    assert (user, password) == ("pvc", SECRET)
    assert SECRET not in repr(credential) and SECRET not in str(credential)
    assert SECRET not in f"{credential}" and "pvc" in repr(credential)


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602, 0o666])
def test_a_file_other_users_can_access_is_refused(tmp_path, mode):
    path = auth_file(tmp_path, mode=mode)
    with pytest.raises(ConfigError) as caught:
        section(auth_file=str(path)).load_credential()
    message = str(caught.value)
    assert message.startswith("zookeeper.auth_file: ") and f"mode {mode:04o}" in message
    assert "0600" in message and SECRET not in message


@pytest.mark.parametrize(
    "text",
    ["", "\n", "pvc\n", ":secret\n", "pvc:\n", "pvc:a\npvc:b\n", "bad user:secret\n", "pvc/x:secret\n"],
)
def test_a_malformed_file_is_refused_without_echoing_it(tmp_path, text):
    with pytest.raises(ConfigError, match="must hold exactly one line 'user:password'") as caught:
        section(auth_file=str(auth_file(tmp_path, text))).load_credential()
    assert "secret" not in str(caught.value)


def test_a_missing_or_unreadable_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"zookeeper.auth_file: .* does not exist.*auth: none"):
        section(auth_file=str(tmp_path / "absent")).load_credential()
    with pytest.raises(ConfigError, match="is not a regular file"):
        section(auth_file=str(tmp_path)).load_credential()


def test_auth_none_needs_no_file_and_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="pvc.config"):
        assert section(auth="none", auth_file=str(tmp_path / "absent")).load_credential() is None
    assert "authentication is off" in caplog.text


def test_an_unknown_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match=r"zookeeper\.auth: "):
        section(auth="sasl")


def test_the_lab_writes_a_private_random_credential(tmp_path):
    path = tmp_path / "lab" / "zookeeper.auth"
    first = write_credential(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_credential_file(path) == first and first.user == "pvc" and len(first.password) >= 32
    assert write_credential(path) != first  # a new lab, a new password


def test_pvcnoded_refuses_an_exposed_credential_file(tmp_path):
    data = node_config_data("n1", ["n1"], "127.0.0.1:9", keepalive_interval=1, session_timeout=4)
    data["zookeeper"]["auth_file"] = str(auth_file(tmp_path, mode=0o644))
    path = tmp_path / "pvc.conf"
    path.write_text(yaml.safe_dump(data))
    env = {"PVC_CONFIG_FILE": str(path), "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    result = subprocess.run(
        [sys.executable, "-m", "pvc.node.daemon"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stderr
    assert "zookeeper.auth_file" in result.stderr and "mode 0644" in result.stderr
    assert SECRET not in result.stderr and "Traceback" not in result.stderr
