"""Running an external tool to completion: the one place PVC starts short-lived commands.

Every tool PVC runs and waits for (LVM, ceph-volume, qemu-img, rbd, ip, ...) goes through
:func:`run`: an argument list (never a shell), a timeout that must be given, and one error
class, :class:`CommandError`, for a tool that exits with an unexpected status, does not
finish in time or cannot be started. Long-lived daemons are :mod:`pvc.processes`' job.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import AnyStr, Generic, Literal, overload

from pvc.errors import PVCError

#: Characters of standard error a failure message keeps (the end of it).
STDERR_TAIL = 500
#: At most this many leading words name a command in messages.
NAME_WORDS = 3


def command_name(argv: Sequence[str]) -> str:
    """The words naming a command in messages: those before its first option (at most three).

    ``["lvcreate", "--yes", ...]`` is ``lvcreate``; ``["ceph-volume", "lvm", "create", ...]``
    is ``ceph-volume lvm create``.
    """
    words = itertools.takewhile(lambda word: not word.startswith("-"), argv[:NAME_WORDS])
    return " ".join(words)


def output_tail(stderr: str, stdout: str, lines: int) -> str:
    """The last ``lines`` lines of ``stderr`` (of ``stdout`` if it has none), joined by `` | ``."""
    text = stderr.strip() or stdout.strip()
    return " | ".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class CommandResult(Generic[AnyStr]):
    """A command that ran to completion with an accepted exit status, and its output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: AnyStr
    stderr: AnyStr


class CommandError(PVCError):
    """An external command failed: an unexpected exit status, a timeout, or it could not start.

    ``returncode`` is None when the command did not run to its end (``timed_out``, or
    ``reason`` holds the OSError that kept it from starting). ``stderr`` and ``stdout``
    are text, whatever mode the command ran in.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        returncode: int | None = None,
        stderr: str = "",
        stdout: str = "",
        timed_out: bool = False,
        timeout: float | None = None,
        reason: OSError | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        self.timed_out = timed_out
        self.timeout = timeout
        self.reason = reason
        super().__init__(self._message())

    @property
    def name(self) -> str:
        """The command's name in messages (see :func:`command_name`)."""
        return command_name(self.argv)

    def tail(self, lines: int) -> str:
        """The last ``lines`` lines of the command's error output (see :func:`output_tail`)."""
        return output_tail(self.stderr, self.stdout, lines)

    def _message(self) -> str:
        if self.reason is not None:
            return f"cannot run {self.argv[0]}: {self.reason}"
        if self.timed_out:
            return f"{self.name} did not finish within {self.timeout:.0f} s"
        return f"{self.name} failed: {self.stderr.strip()[-STDERR_TAIL:]}"


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


@overload
def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    text: Literal[True] = True,
    accept: Collection[int] | None = (0,),
) -> CommandResult[str]: ...


@overload
def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    text: Literal[False],
    accept: Collection[int] | None = (0,),
) -> CommandResult[bytes]: ...


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    text: bool = True,
    accept: Collection[int] | None = (0,),
) -> CommandResult[str] | CommandResult[bytes]:
    """Run ``argv`` (no shell) to completion within ``timeout`` seconds and capture its output.

    ``env`` is the command's whole environment (None: this process's); ``input`` is
    written to its standard input, which is otherwise empty (``/dev/null``). With
    ``text`` (the default) input and output are str, else bytes. An exit status outside
    ``accept`` (None: any status is fine) raises :class:`CommandError`, as do a timeout
    (the command is killed) and a command that cannot be started.
    """
    if isinstance(argv, str | bytes) or not argv:
        raise ValueError(f"a command is a non-empty list of words, not {argv!r}")
    words = [str(word) for word in argv]
    try:
        done = subprocess.run(
            words,
            cwd=cwd,
            env=None if env is None else dict(env),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=text,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise CommandError(
            words, stderr=_text(error.stderr), stdout=_text(error.stdout), timed_out=True, timeout=timeout
        ) from error
    except OSError as error:
        raise CommandError(words, reason=error) from error
    if accept is not None and done.returncode not in accept:
        raise CommandError(
            words, returncode=done.returncode, stderr=_text(done.stderr), stdout=_text(done.stdout)
        )
    return CommandResult(tuple(words), done.returncode, done.stdout, done.stderr)
