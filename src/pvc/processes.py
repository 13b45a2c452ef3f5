"""Starting, checking and stopping processes we own, by PID.

A process is identified by its PID *and* its start time, so a recycled PID is never
mistaken for ours. A zombie counts as dead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRef:
    """A process we started: what it is, its PID and its kernel start time."""

    name: str
    pid: int
    start_time: int
    log: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> ProcessRef:
        return cls(**data)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may contain spaces
    return text[text.rindex(")") + 2 :].split()


def start_time_of(pid: int) -> int | None:
    """Kernel start time (clock ticks since boot) of a PID, None if it does not exist."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: ask for SIGTERM when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(ref: ProcessRef) -> bool:
    """True if the process exists, is the one we started and has not exited.

    A process whose main thread has exited shows as a zombie while its other threads are
    still running (and holding its files and locks): it counts as alive until they are gone.
    """
    _reap(ref.pid)
    fields = _stat_fields(ref.pid)
    if not fields or int(fields[19]) != ref.start_time:
        return False
    return fields[0] != "Z" or _threads_left(ref.pid)


def _threads_left(pid: int) -> bool:
    """Whether a zombie main thread still has other threads running."""
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> ProcessRef:
    """Start ``argv`` in its own session with output appended to ``log_path``.

    With ``die_with_parent`` the kernel sends the child SIGTERM when its parent dies (even
    by SIGKILL), so a crashed daemon leaves no orphaned service. The kernel ties this to
    the *thread* that forked the child: spawn from a long-lived thread, never from a pool
    worker that may end first (the child would be killed with it).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    started = None
    for _ in range(100):
        started = start_time_of(process.pid)
        if started is not None:
            break
        time.sleep(0.01)
    # Popen's object is dropped: reaping is done by is_alive()/terminate() via waitpid.
    process.returncode = 0
    return ProcessRef(name=name, pid=process.pid, start_time=started or 0, log=str(log_path))


def send(ref: ProcessRef, sig: int) -> bool:
    """Send a signal to the process if it is still ours and alive."""
    if not is_alive(ref):
        return False
    try:
        os.kill(ref.pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(refs: Iterable[ProcessRef], timeout: float) -> list[ProcessRef]:
    """Wait until the processes are gone; returns those still alive after ``timeout``."""
    pending = list(refs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [ref for ref in pending if is_alive(ref)]
        if pending:
            time.sleep(0.05)
    return [ref for ref in pending if is_alive(ref)]


def kill_group(ref: ProcessRef, timeout: float = 5.0) -> bool:
    """SIGKILL the process group led by ``ref`` (a process :func:`spawn` started: its own
    session), so its children go with it; waits up to ``timeout`` for the leader to be gone
    and returns whether it is."""
    if not is_alive(ref):
        return True
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(ref.pid, signal.SIGKILL)
    return not wait_gone([ref], timeout)


def terminate(refs: Iterable[ProcessRef], timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL whatever is left."""
    refs = [ref for ref in refs if send(ref, signal.SIGTERM)]
    for ref in wait_gone(refs, timeout):
        send(ref, signal.SIGKILL)
    wait_gone(refs, 5.0)
