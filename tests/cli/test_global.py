"""Global options, the banner, HTTP behaviour (headers, retries, errors) and the console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pvc import __version__
from pvc.client import connections
from tests.cli.conftest import Invoke
from tests.cli.fakeapi import API_KEY, FakeApi


def test_version_and_help_options(pvc: Invoke) -> None:
    result = pvc("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"Parallel Virtual Cluster CLI client version {__version__}"
    for args in (["-h"], ["node", "-h"], ["cluster", "fault", "list", "-h"], ["connection", "add", "--help"]):
        helped = pvc(*args)
        assert helped.exit_code == 0, args
        assert "Usage:" in helped.stdout


def test_banner_on_stderr_and_quiet(pvc: Invoke, connected: int) -> None:
    result = pvc("node", "list", "-f", "raw")
    assert result.exit_code == 0
    banner = f'Using connection "test" - Host: "127.0.0.1:{connected}"  Scheme: "http"  Prefix: "/api/v1"'
    assert result.stderr.strip() == banner
    assert result.stdout.split() == ["hv1", "hv2"]
    quiet = pvc("-q", "node", "list", "-f", "raw")
    assert quiet.stderr == ""
    assert quiet.stdout.split() == ["hv1", "hv2"]
    assert pvc("node", "list", "-f", "raw", env={"PVC_QUIET": "1"}).stderr == ""


def test_silent_suppresses_everything_but_keeps_status(pvc: Invoke, connected: int) -> None:
    result = pvc("-s", "node", "list")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    failed = pvc("-s", "node", "info", "ghost")
    assert (failed.exit_code, failed.output) == (1, "")


def test_request_headers(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    assert pvc("cluster", "status", "-f", "json").exit_code == 0
    call = fake_api.calls("GET", "/status")[0]
    assert call.headers["X-Api-Key"] == API_KEY
    assert call.headers["User-Agent"] == f"pvc-client-cli/{__version__}"


def test_no_key_header_without_key(pvc: Invoke, store_dir: Path, api_port: int, fake_api: FakeApi) -> None:
    fake_api.api_key = None
    connections.register_connection("open", "127.0.0.1", port=api_port)
    assert pvc("-c", "open", "node", "list").exit_code == 0
    assert "X-Api-Key" not in fake_api.calls("GET", "/node")[0].headers


def test_wrong_key_passes_api_message(pvc: Invoke, store_dir: Path, api_port: int) -> None:
    connections.register_connection("bad", "127.0.0.1", port=api_port, api_key="wrong")
    result = pvc("-c", "bad", "node", "list")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: Authentication required"


def test_connection_from_env_and_option(pvc: Invoke, store_dir: Path, api_port: int) -> None:
    connections.register_connection("one", "127.0.0.1", port=api_port, api_key=API_KEY)
    result = pvc("node", "list", "-f", "raw", env={"PVC_CONNECTION": "one"})
    assert result.exit_code == 0
    assert 'Using connection "one"' in result.stderr
    unknown = pvc("-c", "two", "node", "list")
    assert unknown.exit_code == 1
    assert 'Connection "two" is not in the store' in unknown.stderr


def test_no_connection_at_all(pvc: Invoke) -> None:
    result = pvc("node", "list")
    assert result.exit_code == 1
    assert "no default connection set" in result.stderr
    assert "Traceback" not in result.output


def test_debug_prints_calls(pvc: Invoke, connected: int) -> None:
    result = pvc("-v", "node", "list", "-f", "raw")
    assert f"API endpoint: GET http://127.0.0.1:{connected}/api/v1/node" in result.stderr
    assert "Response code: 200" in result.stderr
    assert "API endpoint" not in result.stdout


def test_api_error_message_and_validation_errors(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    missing = pvc("node", "info", "ghost")
    assert missing.exit_code == 1
    assert missing.stderr.splitlines()[-1] == "Error: Node ghost not found"
    assert missing.stdout == ""


def test_get_retried_on_server_errors(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    fake_api.fail_with = [503, 502]
    result = pvc("node", "list", "-f", "raw")
    assert result.exit_code == 0
    assert len(fake_api.calls("GET", "/node")) == 3
    fake_api.fail_with = [503, 503, 500]
    failed = pvc("node", "list")
    assert failed.exit_code == 1
    assert "Temporary failure" in failed.stderr


def test_post_not_retried(pvc: Invoke, connected: int, fake_api: FakeApi) -> None:
    fake_api.fail_with = [503]
    result = pvc("cluster", "maintenance", "on")
    assert result.exit_code == 1
    assert len(fake_api.calls("POST", "/status")) == 1
    assert fake_api.maintenance is False


def test_unreachable_api_is_one_line(pvc: Invoke, store_dir: Path) -> None:
    connections.register_connection("down", "127.0.0.1", port=1, make_default=True)
    result = pvc("-v", "node", "list")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: Failed to connect to the API at http://127.0.0.1:1/api/v1: connection refused"]
    assert sum("failed: connection refused" in line for line in result.stderr.splitlines()) == 3


def test_colour_forced(pvc: Invoke, connected: int) -> None:
    plain = pvc("node", "list")
    assert "\x1b[" not in plain.stdout
    coloured = pvc("--colour", "node", "list")
    assert "\x1b[" in coloured.stdout


def test_console_script_error_has_no_traceback(store_dir: Path) -> None:
    script = Path(sys.executable).with_name("pvc")
    connections.register_connection("down", "127.0.0.1", port=1, make_default=True)
    env = {**os.environ, "PVC_CLIENT_DIR": str(store_dir)}
    done = subprocess.run([str(script), "-q", "node", "list"], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: Failed to connect to the API at http://127.0.0.1:1/api/v1: connection refused"
    ]
    listed = subprocess.run(
        [str(script), "connection", "list", "-f", "json"], capture_output=True, text=True, env=env
    )
    assert [c["name"] for c in json.loads(listed.stdout)] == ["down", "local"]
