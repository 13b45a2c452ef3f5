"""Daemons that start as root and give it up for good: the account they become, and the switch.

pvcapid and the metadata service start as root (the node daemon runs them), do what needs
root, then become an unprivileged account and cannot come back.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
from dataclasses import dataclass

from pvc.errors import ConfigError

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2


@dataclass(frozen=True)
class Account:
    """The account a daemon runs as."""

    name: str
    uid: int
    gid: int
    home: str


def resolve_account(user: str, group: str | None, *, key: str) -> Account:
    """``user`` (and ``group``, default its primary group) as ids; ConfigError naming the
    configuration keys ``<key>.user``/``<key>.group`` if either does not exist."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(
            f"{key}.user: there is no user '{user}' on this system (scripts/setup.sh creates 'pvcapi')"
        ) from None
    gid = entry.pw_gid
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"{key}.group: there is no group '{group}' on this system") from None
    return Account(user, entry.pw_uid, gid, entry.pw_dir)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _parent_death_signal() -> int:
    value = ctypes.c_int(0)
    _libc().prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0)
    return value.value


def drop_to(account: Account, who: str = "pvcapid") -> None:
    """Become ``account`` for good (its group, its supplementary groups from /etc/group).

    The kernel forgets a parent-death signal when the credentials change; it is set again
    so that the daemon (``who``, for messages) still ends with the node daemon that started it.
    """
    death_signal = _parent_death_signal()
    parent = os.getppid()
    os.initgroups(account.name, account.gid)
    os.setresgid(account.gid, account.gid, account.gid)
    os.setresuid(account.uid, account.uid, account.uid)
    if death_signal:
        _libc().prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the parent died while the signal was unset
            raise SystemExit(f"{who}: the node daemon that started it has exited")
    os.environ.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise SystemExit(f"{who}: could not give up root")
