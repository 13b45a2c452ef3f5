"""Install scripts' hooks run as pvcprov, without a network, within limits; whatever they do,
they cannot reach what root can."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time

import pytest

from pvc.cluster.provisioner.sandbox import ScriptError, run_hook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs hooks as pvcprov (needs root)")

VM = {"name": "web1", "arguments": {"image": "debian"}, "disks": [{"disk_id": "sda", "pool": "vms"}]}


def hook(text: str, name: str = "install", **options):
    return run_hook("test", text, name, VM, **options)


def test_a_hook_gets_the_vm_data_and_returns_json_with_its_log():
    result = hook(
        "def create(vm):\n"
        "    log('making', vm.name)\n"
        "    print('printed text goes to the log, not the answer')\n"
        "    return {'name': vm.name, 'image': vm.arguments['image'], 'pool': vm.disks[0].pool}\n",
        "create",
    )
    assert result.value == {"name": "web1", "image": "debian", "pool": "vms"}
    assert result.log[0] == "making web1"
    assert any("printed text goes to the log" in line for line in result.log)


def test_missing_hooks_are_skipped_unless_required():
    assert hook("def install(vm):\n    pass\n", "setup").value is None
    with pytest.raises(ScriptError, match="has no install\\(\\) hook"):
        hook("def setup(vm):\n    pass\n", "install", required=True)


def test_a_failing_hook_is_an_error_naming_the_script_hook_and_line():
    with pytest.raises(ScriptError, match=r"script test: install\(\) failed: KeyError: 'nope' \(line 3\)"):
        hook("def install(vm):\n    x = {}\n    return x['nope']\n")
    with pytest.raises(ScriptError, match="failed: no image given"):
        hook("def install(vm):\n    fail('no image given')\n")
    with pytest.raises(ScriptError, match="not valid Python"):
        hook("def install(vm:\n")
    with pytest.raises(ScriptError, match="failed: TypeError"):
        hook("def install(vm):\n    return object()\n")  # not JSON


def test_a_hook_runs_as_pvcprov_and_cannot_read_roots_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    assert (
        hook("import os\ndef install(vm):\n    return [os.getuid(), os.geteuid()]\n").value
        == [pwd.getpwnam("pvcprov").pw_uid] * 2
    )
    with pytest.raises(ScriptError, match="PermissionError"):
        hook(f"def install(vm):\n    return open({str(secret)!r}).read()\n")
    env = hook("import os\ndef install(vm):\n    return sorted(os.environ)\n").value
    assert "PVC_CONFIG_FILE" not in env and "PATH" in env


def test_a_hook_has_no_network():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        text = (
            "import socket\ndef install(vm):\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        )
        with pytest.raises(ScriptError, match=r"OSError|ConnectionRefused|unreachable"):
            hook(text)


def test_a_hook_that_runs_too_long_is_killed_with_everything_it_started():
    marker = f"pvc-sandbox-{os.getpid()}-{time.monotonic_ns()}"
    text = (
        "import subprocess, time\ndef install(vm):\n"
        f"    subprocess.Popen(['sleep', '300', {marker!r}], stderr=subprocess.DEVNULL)\n"
        "    while True:\n        time.sleep(0.1)\n"
    )
    began = time.monotonic()
    with pytest.raises(ScriptError, match="did not finish within 2 s"):
        hook(text, timeout=2)
    assert time.monotonic() - began < 10
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == []
