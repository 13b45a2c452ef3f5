"""The sandbox's last root step, run inside the hook's new namespaces (see
:mod:`pvc.cluster.provisioner.sandbox`): fence it in, give up root, run the hook.

``python -m pvc.cluster.provisioner.sandbox_enter <user> <cgroup name> <memory> <processes>``

1. empty, size-limited tmpfs over the host's shared writable directories (``/tmp``,
   ``/var/tmp``, ``/dev/shm``, ``/run`` with its sockets), in the hook's own mount
   namespace: nothing it writes stays, and no host service's socket is reachable (PVC's
   own Python installation, should it lie there, is bound back in, read as before);
2. a memory and a process-count cgroup for everything it starts (cgroup v2, or the v1
   ``memory`` and ``pids`` controllers), so its processes together stay within the limits;
3. the unprivileged account, for good; then the child that runs the hook
   (:mod:`pvc.cluster.provisioner.sandbox_child`), on the same stdin, stdout and stderr.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import subprocess
import sys
from pathlib import Path

#: The shared writable places hidden behind a private tmpfs each, and its size.
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run")
SCRATCH_SIZE = "256m"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "pvc-sandbox"


def cgroup_dirs(name: str) -> list[Path]:
    """The cgroup directories of sandbox ``name`` (v2: one; v1: memory and pids)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT / CGROUP_PARENT / name]
    return [CGROUP_ROOT / controller / CGROUP_PARENT / name for controller in ("memory", "pids")]


def _join_cgroups(name: str, memory: int, processes: int) -> None:
    """Create the sandbox's cgroups with their limits and move this process into them."""
    v2 = (CGROUP_ROOT / "cgroup.controllers").exists()
    if v2:
        parent = CGROUP_ROOT / CGROUP_PARENT
        parent.mkdir(exist_ok=True)
        (CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory +pids")
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
    for directory in cgroup_dirs(name):
        directory.mkdir(parents=True, exist_ok=True)
        limits = {
            "memory.max": memory,
            "memory.swap.max": 0,
            "memory.limit_in_bytes": memory,
            "pids.max": processes,
        }
        for key, value in limits.items():
            if (directory / key).exists():
                (directory / key).write_text(str(value))
        (directory / "cgroup.procs").write_text(str(os.getpid()))


def _needed_under(directory: str) -> list[str]:
    """The top-level entries of ``directory`` that PVC's own Python installation lies in
    (an installation under ``/tmp``, say): they stay visible behind the private tmpfs."""
    needed = {sys.prefix, sys.base_prefix, sys.executable, os.path.realpath(sys.executable), *sys.path}
    needed |= {os.path.realpath(path) for path in list(needed) if path}
    prefix = directory.rstrip("/") + "/"
    found = set()
    for path in needed:
        if path and path.startswith(prefix):
            first = path[len(prefix) :].split("/")[0]
            if first:
                found.add(prefix + first)
    return sorted(path for path in found if os.path.exists(path))


def _hide(directory: str) -> None:
    """An empty tmpfs over ``directory``, with PVC's own installation bound back into it."""
    kept = {path: os.open(path, os.O_PATH) for path in _needed_under(directory)}
    options = f"size={SCRATCH_SIZE},mode=1777,nosuid,nodev"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", directory], check=True)
    for path, handle in kept.items():
        source = f"/proc/self/fd/{handle}"
        if os.path.isdir(source):
            os.makedirs(path, exist_ok=True)
        else:
            open(path, "a").close()
        _bind(source, path)  # by the kernel: mount(8) would look the path up again, in the tmpfs
        os.close(handle)


MS_BIND = 4096


def _bind(source: str, target: str) -> None:
    """Bind-mount ``source`` (which may be a ``/proc/self/fd`` link) on ``target``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), None, MS_BIND, None) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"bind {source} on {target}: {os.strerror(error)}")


def main(argv: list[str]) -> int:
    user, cgroup, memory, processes = argv[0], argv[1], int(argv[2]), int(argv[3])
    for directory in PRIVATE_DIRS:
        if os.path.isdir(directory) and not os.path.islink(directory):
            _hide(directory)
    try:
        _join_cgroups(cgroup, memory, processes)
    except OSError as error:  # no cgroup to use: the per-process limits still hold
        print(f"(sandbox) no cgroup limits: {error}", file=sys.stderr)
    account = pwd.getpwnam(user)
    os.initgroups(account.pw_name, account.pw_gid)
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
    os.environ.update(USER=account.pw_name, LOGNAME=account.pw_name)
    child = [sys.executable, "-I", "-m", "pvc.cluster.provisioner.sandbox_child"]
    os.execv(child[0], child)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
