"""Running install scripts' hooks without privileges.

An install script is Python an operator uploaded through the API, and no API role may
become root on a node. So each hook runs in a process of its own
(:mod:`pvc.cluster.provisioner.sandbox_child`), as the unprivileged account ``pvcprov``, in
network, PID, mount and IPC namespaces of its own (no network at all; when the hook
returns or times out, every process it started dies with the namespace, ``setsid`` or
not), with private scratch directories over the host's shared ones and their sockets
(see :mod:`.sandbox_enter`), a cgroup holding all its processes to one memory and process
budget, a near-empty environment (``PATH``, ``LANG``, ``HOME``, ``USER``), per-process
CPU-time, memory and file limits, and a wall-clock timeout. It gets
the VM's data as JSON and hands back a JSON result; what it logs is returned with it, and
no more than a bounded amount of either is read. Privileged work (volumes, mounting,
defining the VM) is done by PVC itself, from what hooks return.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner.sandbox_enter import cgroup_dirs

#: The account hooks run as (scripts/setup.sh creates it).
SANDBOX_USER = "pvcprov"
#: The hooks, in the order the create task calls them.
HOOKS = ("setup", "create", "prepare", "install", "cleanup")
#: Seconds a hook may take, and its limits.
DEFAULT_TIMEOUT = 600.0
MEMORY_LIMIT = 1024 * 2**20
OPEN_FILES = 256
FILE_SIZE = 1024 * 2**20
PROCESSES = 64
#: Bytes read from a hook's answer channel and (the last ones) from its stderr.
ANSWER_LIMIT = 4 * 2**20
STDERR_LIMIT = 64 * 2**10
#: What of a hook's log and error is kept (lines, characters a line): they end up in the
#: task's record in ZooKeeper, whose znodes are small.
LOG_LINES = 100
LOG_LINE_CHARS = 300
ERROR_CHARS = 1000
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}


class ScriptError(ClusterError):
    """An install script's hook failed; the message names the script, the hook and why."""


@dataclass
class HookResult:
    value: Any
    log: list[str] = field(default_factory=list)


def command(user: str = SANDBOX_USER, cgroup: str = "") -> list[str]:
    """The child's command line: new network, PID, mount and IPC namespaces, fenced in and
    dropped to ``user`` there by :mod:`.sandbox_enter` (refused unless we are root: running
    the script as the caller would give it the caller's rights)."""
    if os.geteuid() != 0:
        raise ScriptError("install scripts run only from a node daemon started as root (to drop to pvcprov)")
    # --pid --fork --kill-child: the entry process is the namespace's init; when the hook's
    # process ends (or unshare is killed), the kernel kills everything left in the namespace
    namespaces = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--ipc"]
    enter = [sys.executable, "-I", "-m", "pvc.cluster.provisioner.sandbox_enter"]
    return [*namespaces, "--", *enter, user, cgroup or "unnamed", str(MEMORY_LIMIT), str(PROCESSES)]


def _remove_cgroups(name: str) -> None:
    """Remove a finished hook's cgroups (their processes may take a moment to be gone)."""
    for directory in cgroup_dirs(name):
        for _ in range(50):
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def _limits(cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE, FILE_SIZE))
    # counted per account, enforced once runuser has become pvcprov
    resource.setrlimit(resource.RLIMIT_NPROC, (PROCESSES, PROCESSES))


def _read_capped(process: subprocess.Popen, timeout: float) -> tuple[bytes, bytes]:
    """Read the child's stdout (its first ANSWER_LIMIT bytes) and stderr (its last
    STDERR_LIMIT bytes) until both close; raise TimeoutExpired at ``timeout``."""
    deadline = time.monotonic() + timeout
    answer, stderr = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, answer)
        selector.register(process.stderr, selectors.EVENT_READ, stderr)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, timeout)
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer = key.data
                if buffer is answer:
                    buffer += chunk[: max(0, ANSWER_LIMIT - len(buffer))]
                else:
                    buffer += chunk
                    del buffer[:-STDERR_LIMIT]
    process.wait(max(0.1, deadline - time.monotonic()))
    return bytes(answer), bytes(stderr)


def run_hook(
    name: str,
    text: str,
    hook: str,
    vm_data: dict,
    *,
    required: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    user: str = SANDBOX_USER,
) -> HookResult:
    """Run hook ``hook`` of script ``name`` (its source ``text``) on ``vm_data``.

    A missing hook returns None unless ``required``; a failing one raises ScriptError.
    """
    if hook not in HOOKS:
        raise ValueError(f"unknown hook {hook}")
    request = json.dumps({"name": name, "text": text, "hook": hook, "vm": vm_data, "required": required})
    cpu = max(1, int(timeout))
    cgroup = f"{os.getpid()}-{time.monotonic_ns()}"
    with tempfile.TemporaryFile() as stdin:  # a file, so a child that never reads cannot block us
        stdin.write(request.encode())
        stdin.seek(0)
        process = subprocess.Popen(
            command(user, cgroup),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=CLEAN_ENV,
            cwd="/",
            start_new_session=True,
            preexec_fn=lambda: _limits(cpu),
        )
    try:
        raw_stdout, raw_stderr = _read_capped(process, timeout)
    except subprocess.TimeoutExpired:
        # killing unshare (--kill-child) ends the namespace and all of the hook's processes
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        raise ScriptError(f"script {name}: {hook}() did not finish within {timeout:g} s") from None
    finally:
        process.stdout.close()
        process.stderr.close()
        _remove_cgroups(cgroup)
    stdout = raw_stdout.decode(errors="replace")
    stderr = raw_stderr.decode(errors="replace")
    log: list[str] = []
    outcome: dict | None = None
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if "log" in message:
            log.append(str(message["log"])[:LOG_LINE_CHARS])
        elif "result" in message or "error" in message:
            outcome = message
    log = log[:LOG_LINES] + [f"(stderr) {line[:LOG_LINE_CHARS]}" for line in stderr.splitlines()[-20:]]
    if outcome is None:
        status = process.returncode
        raise ScriptError(f"script {name}: {hook}() ended without an answer (exit status {status})")
    if "error" in outcome:
        raise ScriptError(f"script {name}: {hook}() failed: {str(outcome['error'])[:ERROR_CHARS]}")
    return HookResult(outcome["result"], log)
