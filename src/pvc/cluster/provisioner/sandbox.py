"""Running install scripts' hooks without privileges.

An install script is Python an operator uploaded through the API, and no API role may
become root on a node. So each hook runs in a process of its own
(:mod:`pvc.cluster.provisioner.sandbox_child`), as the unprivileged account ``pvcprov``, in
a network namespace of its own (no network at all), with an empty environment, a CPU-time
and a memory limit, and a wall-clock timeout after which it is killed. It gets the VM's
data as JSON and hands back a JSON result; what it logs is returned with it. Privileged
work (volumes, mounting, defining the VM) is done by PVC itself, from what hooks return.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from pvc.cluster.errors import ClusterError

#: The account hooks run as (scripts/setup.sh creates it).
SANDBOX_USER = "pvcprov"
#: The hooks, in the order the create task calls them.
HOOKS = ("setup", "create", "prepare", "install", "cleanup")
#: Seconds a hook may take, and its limits.
DEFAULT_TIMEOUT = 600.0
MEMORY_LIMIT = 1024 * 2**20
OPEN_FILES = 256
FILE_SIZE = 1024 * 2**20
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}


class ScriptError(ClusterError):
    """An install script's hook failed; the message names the script, the hook and why."""


@dataclass
class HookResult:
    value: Any
    log: list[str] = field(default_factory=list)


def command(user: str = SANDBOX_USER) -> list[str]:
    """The child's command line: as ``user`` in a new network namespace (refused unless we are
    root: running the script as the caller would give it the caller's rights)."""
    child = [sys.executable, "-I", "-m", "pvc.cluster.provisioner.sandbox_child"]
    if os.geteuid() != 0:
        raise ScriptError("install scripts run only from a node daemon started as root (to drop to pvcprov)")
    return ["unshare", "--net", "--", "runuser", "-u", user, "--", *child]


def _limits(cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE, FILE_SIZE))


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
    process = subprocess.Popen(
        command(user),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CLEAN_ENV,
        cwd="/",
        start_new_session=True,  # its own process group: a timeout kills all of it
        preexec_fn=lambda: _limits(cpu),
    )
    try:
        stdout, stderr = process.communicate(request, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ScriptError(f"script {name}: {hook}() did not finish within {timeout:g} s") from None
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    log: list[str] = []
    outcome: dict | None = None
    for line in done.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if "log" in message:
            log.append(str(message["log"]))
        elif "result" in message or "error" in message:
            outcome = message
    log += [f"(stderr) {line}" for line in done.stderr.splitlines()[-20:]]
    if outcome is None:
        raise ScriptError(f"script {name}: {hook}() ended without an answer (exit status {done.returncode})")
    if "error" in outcome:
        raise ScriptError(f"script {name}: {hook}() failed: {outcome['error']}")
    return HookResult(outcome["result"], log)
