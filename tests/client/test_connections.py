"""The connection store: file format, permissions, default connection, cfgfile entries."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pvc.client import connections
from pvc.client.errors import ConnectionStoreError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_load_creates_store_with_local_entry(store_dir: Path) -> None:
    data = connections.load_connections()
    path = store_dir / "pvc.json"
    assert data == {"local": {"cfgfile": connections.LOCAL_CFGFILE}}
    assert path.read_text() == json.dumps(data, sort_keys=True, indent=4) + "\n"
    assert _mode(path) == 0o600


def test_file_mode_from_environment(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PVC_CLIENT_DB_PERMS", "640")
    connections.load_connections()
    assert _mode(store_dir / "pvc.json") == 0o640


def test_register_writes_pvc_form_and_keeps_mode(store_dir: Path) -> None:
    connections.load_connections()
    (store_dir / "pvc.json").chmod(0o600)
    path = connections.register_connection("lab", "10.100.0.250", port=7371, scheme="https", api_key="k1")
    written = json.loads(path.read_text())
    assert written["lab"] == {
        "description": "",
        "host": "10.100.0.250",
        "port": 7371,
        "scheme": "https",
        "api_key": "k1",
    }
    assert path.read_text() == json.dumps(written, sort_keys=True, indent=4) + "\n"
    assert _mode(path) == 0o600
    assert not (store_dir / "default").exists()


def test_register_default_and_resolution(store_dir: Path) -> None:
    connections.register_connection("lab", "10.100.0.250", make_default=True)
    assert (store_dir / "default").read_text().strip() == "lab"
    assert connections.get_default_connection() == "lab"
    conn = connections.resolve_connection(None)
    assert (conn.name, conn.host, conn.port, conn.scheme) == ("lab", "10.100.0.250", 7370, "http")
    assert conn.base_url == "http://10.100.0.250:7370/api/v1"
    connections.register_connection("other", "10.0.0.9")
    assert connections.resolve_connection("other").host == "10.0.0.9"
    assert connections.resolve_connection(None).name == "lab"


def test_register_in_explicit_directory(tmp_path: Path, store_dir: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    connections.register_connection("lab", "10.1.1.1", make_default=True, directory=elsewhere)
    assert json.loads((elsewhere / "pvc.json").read_text())["lab"]["host"] == "10.1.1.1"
    assert connections.get_default_connection(elsewhere) == "lab"
    assert not (store_dir / "pvc.json").exists()


def test_removing_default_clears_default_file(store_dir: Path) -> None:
    connections.register_connection("lab", "10.100.0.250", make_default=True)
    connections.register_connection("other", "10.0.0.9")
    connections.remove_connection("other")
    assert connections.get_default_connection() == "lab"
    connections.remove_connection("lab")
    assert not (store_dir / "default").exists()
    assert "lab" not in connections.load_connections()


def test_remove_unknown_fails(store_dir: Path) -> None:
    with pytest.raises(ConnectionStoreError, match='No connection "nope"'):
        connections.remove_connection("nope")


def test_no_connection_and_no_local_config(store_dir: Path) -> None:
    with pytest.raises(ConnectionStoreError, match="no default connection set"):
        connections.resolve_connection(None)


def test_default_naming_missing_connection(store_dir: Path) -> None:
    connections.load_connections()
    (store_dir / "default").write_text("gone\n")
    with pytest.raises(ConnectionStoreError, match='default connection "gone"'):
        connections.resolve_connection(None)


def _write_conf(path: Path, *, auth: bool, source: str = "token", ssl: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "api:\n"
        "  listen:\n"
        "    address: 0.0.0.0\n"
        "    port: 7399\n"
        f"  ssl:\n    enabled: {'yes' if ssl else 'no'}\n"
        f"  authentication:\n    enabled: {'yes' if auth else 'no'}\n    source: {source}\n"
        "  token:\n"
        "    - description: first\n"
        "      token: tok-one\n"
        "    - description: second\n"
        "      token: tok-two\n"
    )


def test_cfgfile_entry_parsing(tmp_path: Path, store_dir: Path) -> None:
    conf = tmp_path / "node.conf"
    _write_conf(conf, auth=True, ssl=True)
    conn = connections.read_cfgfile("x", str(conf))
    assert (conn.host, conn.port, conn.scheme, conn.api_key) == ("127.0.0.1", 7399, "https", "tok-one")
    assert conn.description == str(conf)
    _write_conf(conf, auth=False)
    conn = connections.read_cfgfile("x", str(conf))
    assert (conn.scheme, conn.api_key) == ("http", None)
    _write_conf(conf, auth=True, source="other")
    assert connections.read_cfgfile("x", str(conf)).api_key is None


def test_builtin_local_reads_local_cfgfile(store_dir: Path) -> None:
    _write_conf(Path(connections.LOCAL_CFGFILE), auth=True)
    conn = connections.resolve_connection(None)
    assert (conn.name, conn.host, conn.port, conn.api_key) == ("local", "127.0.0.1", 7399, "tok-one")
    assert conn.verify_ssl is False


def test_local_entry_forced_back_when_local_config_exists(store_dir: Path) -> None:
    connections.register_connection("local", "10.9.9.9")
    assert connections.load_connections()["local"]["host"] == "10.9.9.9"
    _write_conf(Path(connections.LOCAL_CFGFILE), auth=False)
    assert connections.load_connections()["local"] == {"cfgfile": connections.LOCAL_CFGFILE}


def test_unreadable_cfgfile_is_a_clear_error(tmp_path: Path, store_dir: Path) -> None:
    with pytest.raises(ConnectionStoreError, match="cannot read"):
        connections.read_cfgfile("x", str(tmp_path / "missing.conf"))
    bad = tmp_path / "bad.conf"
    bad.write_text("api: {}\n")
    with pytest.raises(ConnectionStoreError, match=r"api\.listen\.address"):
        connections.read_cfgfile("x", str(bad))


def test_tls_verification_setting(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connections.Connection(name="lab", host="h", port=1, scheme="https")
    assert conn.verify_ssl is True
    monkeypatch.setenv("PVC_CLIENT_VERIFY_SSL", "False")
    assert conn.verify_ssl is False
    monkeypatch.setenv("PVC_CLIENT_VERIFY_SSL", "true")
    assert conn.verify_ssl is False
    monkeypatch.setenv("PVC_CLIENT_VERIFY_SSL", "True")
    assert conn.verify_ssl is True
    assert connections.Connection(name="local", host="h", port=1).verify_ssl is False


def test_cfgfile_defaults_follow_pvcapid(tmp_path: Path, store_dir: Path) -> None:
    """No listen address: the upstream floating address; no authentication key: keys are on."""
    conf = tmp_path / "node.conf"
    conf.write_text(
        "networks:\n"
        "  upstream: {address: 10.100.0.1/24, floating_address: 10.100.0.250/24}\n"
        "api:\n"
        "  token:\n"
        "    - token: tok-one\n"
    )
    conn = connections.read_cfgfile("x", str(conf))
    assert (conn.host, conn.port, conn.api_key) == ("10.100.0.250", 7370, "tok-one")
    conf.write_text("networks:\n  upstream: {address: 10.100.0.1/24}\napi: {}\n")
    assert connections.read_cfgfile("x", str(conf)).host == "10.100.0.1"
