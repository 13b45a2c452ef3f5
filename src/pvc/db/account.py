"""The PostgreSQL installation: its programs, its account (``postgres``), running programs
as that account, and the directories it owns."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from pvc.errors import PVCError

#: Debian's PostgreSQL 15 programs.
PG_BINDIR = Path("/usr/lib/postgresql/15/bin")
#: The account PostgreSQL (and Patroni) run as and that owns their directories.
PG_USER = "postgres"


class PostgresError(PVCError):
    """PostgreSQL, or its files, cannot be made, started, stopped or used."""


def account(user: str = PG_USER) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise PostgresError(f"there is no {user} account to run PostgreSQL") from None


def as_user(argv: list[str], user: str = PG_USER) -> list[str]:
    """``argv`` run as ``user``: as is when we are that account, through runuser when root."""
    entry = account(user)
    if os.geteuid() == entry.pw_uid:
        return argv
    if os.geteuid() != 0:
        raise PostgresError(f"PostgreSQL is run by root or {user}, not by uid {os.geteuid()}")
    return ["runuser", "-u", user, "--", *argv]


def check_reachable(path: Path, user: str = PG_USER) -> None:
    """Every directory above ``path`` must let the account pass (search permission)."""
    entry = account(user)
    groups = set(os.getgrouplist(entry.pw_name, entry.pw_gid))
    for parent in reversed(path.parents):
        info = parent.stat()
        if info.st_uid == entry.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            raise PostgresError(f"{user} cannot reach {path}: no search permission on {parent}")


def own_directory(path: Path, what: str, user: str = PG_USER) -> None:
    """Make ``path`` (mode 0700, owned by the account) or check an existing one."""
    entry = account(user)
    if not path.parent.is_dir():
        raise PostgresError(f"the {what}'s parent {path.parent} is not a directory")
    check_reachable(path, user)
    if not path.exists():
        path.mkdir(mode=0o700)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        return
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise PostgresError(f"the {what} {path} is not a directory")
    if info.st_uid != entry.pw_uid:
        raise PostgresError(f"the {what} {path} is owned by {owner_name(info.st_uid)}, not {user}")


def write_owned(path: Path, text: str, user: str = PG_USER) -> None:
    """Write ``text`` to ``path`` readable by the account alone (replacing any file there)."""
    entry = account(user)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        if os.geteuid() == 0:  # by descriptor: the account owns the directory, not this file's path
            os.fchown(handle.fileno(), entry.pw_uid, entry.pw_gid)
        handle.write(text)
    os.replace(temporary, path)


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
