"""``pvc connection add|remove|list|detail``."""

from __future__ import annotations

import json
from pathlib import Path

from pvc.client import connections
from tests.cli.conftest import Invoke
from tests.cli.fakeapi import API_KEY, FakeApi


def test_add_writes_store_without_api_call(pvc: Invoke, store_dir: Path) -> None:
    result = pvc("connection", "add", "prod", "-a", "10.0.0.5", "-p", "7000", "-k", "Abc-123", "-s")
    assert result.exit_code == 0, result.output
    assert 'Added connection "prod" (https://10.0.0.5:7000)' in result.stdout
    data = json.loads((store_dir / "pvc.json").read_text())
    assert data["prod"] == {
        "description": "N/A",
        "host": "10.0.0.5",
        "port": 7000,
        "scheme": "https",
        "api_key": "Abc-123",
    }
    assert data["local"] == {"cfgfile": connections.LOCAL_CFGFILE}
    assert not (store_dir / "default").exists()


def test_add_requires_address(pvc: Invoke) -> None:
    result = pvc("connection", "add", "prod")
    assert result.exit_code == 2
    assert "--address" in result.stderr


def test_add_with_default_flag_and_remove(pvc: Invoke, store_dir: Path) -> None:
    assert pvc("connection", "add", "lab", "-a", "10.100.0.250", "--default").exit_code == 0
    assert (store_dir / "default").read_text().strip() == "lab"
    listed = json.loads(pvc("connection", "list", "-f", "json").stdout)
    assert [c["name"] for c in listed if c["default"]] == ["lab"]
    result = pvc("connection", "remove", "lab")
    assert result.exit_code == 0
    assert 'Removed connection "lab"' in result.stdout
    assert not (store_dir / "default").exists()
    assert "lab" not in json.loads((store_dir / "pvc.json").read_text())


def test_remove_unknown_is_an_error(pvc: Invoke) -> None:
    result = pvc("connection", "remove", "ghost")
    assert result.exit_code == 1
    assert 'No connection "ghost"' in result.stderr
    assert "Traceback" not in result.output


def test_list_masks_keys_unless_asked(pvc: Invoke) -> None:
    pvc("connection", "add", "prod", "-a", "10.0.0.5", "-k", "ab12-CD34", "-d", "Production")
    masked = pvc("connection", "list")
    assert masked.exit_code == 0
    assert "xxxx-xxxx" in masked.stdout
    assert "ab12" not in masked.stdout
    assert "Production" in masked.stdout and "10.0.0.5" in masked.stdout
    assert "\x1b[" not in masked.stdout
    shown = pvc("connection", "list", "-k", "-f", "json")
    prod = next(c for c in json.loads(shown.stdout) if c["name"] == "prod")
    assert prod == {
        "name": "prod",
        "description": "Production",
        "address": "10.0.0.5",
        "port": 7370,
        "scheme": "http",
        "api_key": "ab12-CD34",
        "default": False,
    }


def test_list_raw_pretty_json_and_prometheus(pvc: Invoke) -> None:
    pvc("connection", "add", "prod", "-a", "10.0.0.5", "-d", "Production")
    assert pvc("connection", "list", "-f", "raw").stdout.split() == ["local", "prod"]
    pretty = pvc("connection", "list", "-f", "json-pretty").stdout
    assert pretty.startswith("[\n  {\n")
    prometheus = json.loads(pvc("connection", "list", "-f", "json-prometheus").stdout)
    assert prometheus == [
        {
            "targets": ["10.0.0.5:7370"],
            "labels": {"job": "pvc", "pvc_cluster_name": "prod: Production", "pvc_cluster_id": "prod"},
        }
    ]


def test_detail_queries_every_connection(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    pvc("connection", "add", "down", "-a", "127.0.0.1", "-p", "1")
    result = pvc("connection", "detail", "-f", "json")
    assert result.exit_code == 0, result.output
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["test"]["health"] == 25
    assert records["test"]["primary_node"] == "hv1"
    assert records["test"]["nodes"] == 2
    assert records["down"]["health"] is None
    assert 'Connection "down": Failed to connect' in result.stderr
    assert fake_api.calls("GET", "/status")[0].headers["X-Api-Key"] == API_KEY
    table = pvc("connection", "detail").stdout
    assert "test" in table and "25%" in table and "N/A" in table
