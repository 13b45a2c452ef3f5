"""Finding a VM's QEMU processes by UUID, for a node that must stop its VMs at once."""

import os
import subprocess
import sys

from pvc.hypervisor import hard_kill
from tests.helpers import wait_for

UUID = "6f1b6a3e-1111-4222-8333-944455556666"


def fake_proc(tmp_path, processes: dict[int, list[str]]):
    for pid, argv in processes.items():
        entry = tmp_path / str(pid)
        entry.mkdir()
        (entry / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (tmp_path / "self").mkdir()
    return tmp_path


def test_qemu_processes_are_found_by_their_uuid_argument(tmp_path):
    proc = fake_proc(
        tmp_path,
        {
            10: ["/usr/bin/qemu-system-x86_64", "-name", "guest=vm1,debug-threads=on", "-uuid", UUID],
            11: ["/usr/bin/qemu-system-x86_64", "-uuid", "another-uuid"],
            12: ["/bin/sh", "-c", f"echo -uuid {UUID}"],  # not a QEMU
            13: ["/usr/bin/python3", "-uuid", UUID],
        },
    )
    assert hard_kill.qemu_pids({UUID}, proc) == {UUID: [10]}
    assert hard_kill.qemu_pids({"none"}, proc) == {}


def test_kill_now_kills_a_running_process_by_its_uuid(tmp_path):
    # A stand-in "QEMU": a process whose argv[0] is named qemu-… and carries -uuid.
    fake = tmp_path / "qemu-system-test"
    fake.symlink_to(sys.executable)
    child = subprocess.Popen([str(fake), "-c", "import time; time.sleep(60)", "-uuid", UUID])
    try:
        # (a just-started process may show its arguments a moment later on a busy machine)
        assert wait_for(lambda: hard_kill.qemu_pids({UUID}) == {UUID: [child.pid]}, timeout=5)
        assert hard_kill.kill_now({UUID}) == {UUID: [child.pid]}
        assert child.wait(5) == -9
    finally:
        if child.poll() is None:
            os.kill(child.pid, 9)
