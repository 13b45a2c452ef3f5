"""Install scripts' hooks run as pvcprov, without a network, within limits; whatever they do,
they cannot reach what root can."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

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
    secret = Path("/etc/shadow")  # root's, outside the directories the sandbox hides
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


def _background(marker: str, new_session: bool) -> str:
    """Script lines starting a 300 s sleeper whose command line holds ``marker``."""
    return (
        "    import subprocess, sys\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', {marker!r}],"
        f" start_new_session={new_session}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )


def _left_running(marker: str) -> list[str]:
    time.sleep(0.5)
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize("new_session", [False, True], ids=["same-session", "setsid"])
def test_a_hook_that_runs_too_long_is_killed_with_everything_it_started(new_session):
    marker = f"pvc-sandbox-{os.getpid()}-{time.monotonic_ns()}"
    text = "import time\ndef install(vm):\n" + _background(marker, new_session)
    text += "    time.sleep(1)\n    while True:\n        time.sleep(0.1)\n"
    began = time.monotonic()
    with pytest.raises(ScriptError, match="did not finish within 3 s"):
        hook(text, timeout=3)
    assert time.monotonic() - began < 10
    assert _left_running(marker) == []


def test_nothing_a_hook_started_outlives_it_even_when_it_succeeds():
    marker = f"pvc-sandbox-{os.getpid()}-{time.monotonic_ns()}"
    text = "import time\ndef install(vm):\n" + _background(marker, True)
    text += "    time.sleep(1)\n    return 'done'\n"
    assert hook(text).value == "done"
    assert _left_running(marker) == []


def test_a_hook_cannot_forge_or_flood_the_answer():
    text = (
        "import os, sys\ndef install(vm):\n"
        '    os.write(1, b\'{"result": "forged"}\')\n'  # no newline: it would glue to the answer
        "    for _ in range(200):\n"
        "        os.write(2, b'x' * 65536 + b'\\n')\n"
        "    print('last words')\n"
        "    return 'real'\n"
    )
    result = hook(text)
    assert result.value == "real"
    assert any("last words" in line for line in result.log)
    assert sum(len(line) for line in result.log) <= 80 * 2**10  # the stderr tail, not 13 MB


def test_the_shipped_scripts_run_in_the_sandbox():
    from pvc.cluster.provisioner.scripts import NAMES, shipped

    assert set(NAMES) == {"noop", "clone", "debootstrap", "ova"}
    assert run_hook("noop", shipped("noop"), "setup", VM).value is None
    clone = shipped("clone")
    with pytest.raises(ScriptError, match="needs a storage template"):
        run_hook("clone", clone, "setup", {**VM, "volumes": [{"disk_id": "sda", "source_volume": None}]})
    cloned = {
        **VM,
        "volumes": [{"disk_id": "sda", "source_volume": "base@golden", "pool": "vms", "volume": "w_sda"}],
    }
    assert "cloning sda for web1" in run_hook("clone", clone, "setup", cloned).log[0]
    assert run_hook("clone", clone, "create", cloned).value is None
    booted = {**cloned, "arguments": {"kernel": "/images/k", "initrd": "/images/i", "cmdline": "quiet"}}
    assert run_hook("clone", clone, "create", booted).value == {
        "kernel": "/images/k",
        "initrd": "/images/i",
        "cmdline": "quiet",
    }


def test_shared_scratch_and_sockets_are_hidden_and_nothing_written_stays(tmp_path):
    seen = tmp_path / "host-file"
    seen.write_text("the host's /tmp")
    marker = f"pvc-sandbox-{os.getpid()}-{time.monotonic_ns()}"
    text = (
        "import os\ndef install(vm):\n"
        f"    open('/tmp/{marker}', 'w').write('x')\n"
        f"    open('/dev/shm/{marker}', 'w').write('x')\n"
        "    return [sorted(os.listdir('/tmp')), os.path.exists('/run/libvirt'), "
        f"os.path.exists({str(seen)!r})]\n"
    )
    from pvc.cluster.provisioner.sandbox_enter import _needed_under

    listing, libvirt_socket_dir, host_file = hook(text).value
    installation = {Path(path).name for path in _needed_under("/tmp")}  # PVC itself, if it lies there
    assert set(listing) == {marker} | installation
    assert libvirt_socket_dir is False and host_file is False
    assert not Path(f"/tmp/{marker}").exists() and not Path(f"/dev/shm/{marker}").exists()


def _cgroups_writable() -> bool:
    from pvc.cluster.provisioner.sandbox_enter import CGROUP_ROOT

    v2 = CGROUP_ROOT / "cgroup.subtree_control"
    return os.access(v2 if v2.exists() else CGROUP_ROOT / "memory", os.W_OK)


@pytest.mark.skipif(not _cgroups_writable(), reason="this machine lets no process make cgroups")
def test_all_of_a_hooks_processes_share_one_memory_budget():
    from pvc.cluster.provisioner.sandbox import MEMORY_LIMIT

    # four processes of 400 MiB each: each within its own limit, together beyond the budget
    text = (
        "import subprocess, sys\ndef install(vm):\n"
        "    code = 'b = bytearray(400 * 2**20); import time; time.sleep(3)'\n"
        "    ps = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(4)]\n"
        "    return [p.wait() for p in ps]\n"
    )
    codes = hook(text, timeout=60).value
    assert MEMORY_LIMIT < 4 * 400 * 2**20
    assert any(code != 0 for code in codes), codes  # the cgroup killed or refused some
