"""pvcapid's start as root and its switch to an unprivileged account.

pvcapid starts as root (the node daemon runs it), reads what only root may read (the TLS
private key, and any credential file that is not group-readable by the API's group),
prepares the one directory it writes (``<state_dir>/uploads``), and then becomes
``api.user``/``api.group`` for good. Everything it opens later must be readable by that
account: the Ceph ``ceph_conf`` and ``ceph_keyring`` (owned ``root:<api group>``, mode
0640), the Python installation and the configuration file's directory path.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
import ssl
from dataclasses import dataclass
from pathlib import Path

from pvc.config import NodeConfig
from pvc.errors import ConfigError

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
#: The directory under ``state_dir`` where pvcapid spools uploaded images.
UPLOADS = "uploads"


@dataclass(frozen=True)
class Account:
    """The account pvcapid runs as."""

    name: str
    uid: int
    gid: int
    home: str


def resolve_account(config: NodeConfig) -> Account:
    """``api.user``/``api.group`` as ids; ConfigError naming the key if either does not exist."""
    api = config.api
    try:
        entry = pwd.getpwnam(api.user)
    except KeyError:
        raise ConfigError(
            f"api.user: there is no user '{api.user}' on this system (scripts/setup.sh creates 'pvcapi')"
        ) from None
    gid = entry.pw_gid
    if api.group:
        try:
            gid = grp.getgrnam(api.group).gr_gid
        except KeyError:
            raise ConfigError(f"api.group: there is no group '{api.group}' on this system") from None
    return Account(api.user, entry.pw_uid, gid, entry.pw_dir)


def tls_context(config: NodeConfig) -> ssl.SSLContext | None:
    """The server TLS context, loaded now (while the private key is still readable)."""
    tls = config.api.ssl
    if not tls.enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile=str(tls.certificate), keyfile=str(tls.private_key))
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"api.ssl: cannot load {tls.certificate} / {tls.private_key}: {error}") from None
    return context


def prepare_uploads(config: NodeConfig, account: Account) -> Path:
    """Create ``<state_dir>/uploads`` owned by the account (mode 0700); returns its path."""
    uploads = Path(config.paths.state_dir) / UPLOADS
    uploads.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(uploads, account.uid, account.gid)
    uploads.chmod(0o700)
    return uploads


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _parent_death_signal() -> int:
    value = ctypes.c_int(0)
    _libc().prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0)
    return value.value


def drop_to(account: Account) -> None:
    """Become ``account`` for good (its group, its supplementary groups from /etc/group).

    The kernel forgets a parent-death signal when the credentials change; it is set again
    so that pvcapid still ends with the node daemon that started it.
    """
    death_signal = _parent_death_signal()
    parent = os.getppid()
    os.initgroups(account.name, account.gid)
    os.setresgid(account.gid, account.gid, account.gid)
    os.setresuid(account.uid, account.uid, account.uid)
    if death_signal:
        _libc().prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # the parent died while the signal was unset
            raise SystemExit("pvcapid: the node daemon that started it has exited")
    os.environ.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise SystemExit("pvcapid: could not give up root")


def unreadable_files(config: NodeConfig) -> list[str]:
    """Files pvcapid reads after the switch that the current account cannot (key: path)."""
    storage = config.storage
    keyring_key = "storage.api_keyring" if storage.api_keyring else "storage.ceph_keyring"
    wanted = {
        "storage.ceph_conf": storage.ceph_conf,
        keyring_key: storage.for_api().ceph_keyring,  # the key the API connects with
    }
    found = [f"{key}: {path}" for key, path in wanted.items() if path and not os.access(path, os.R_OK)]
    uploads = Path(config.paths.state_dir) / UPLOADS
    if not os.access(uploads, os.W_OK | os.X_OK):
        found.append(f"paths.state_dir: {uploads} (not writable)")
    return found


def become_unprivileged(config: NodeConfig) -> str:
    """Prepare what needs root, then switch to ``api.user``; returns a sentence for the log.

    Started as another user, pvcapid stays that user (nothing to give up). Raises
    ConfigError when the account is missing, when it is root without ``api.allow_root``,
    or when it cannot read the files it needs.
    """
    if os.geteuid() != 0:
        prepare_uploads(config, Account("", os.getuid(), os.getgid(), ""))
        return f"running as uid {os.getuid()} (not started as root)"
    account = resolve_account(config)
    prepare_uploads(config, account)
    if account.uid == 0:
        if not config.api.allow_root:
            raise ConfigError("api.user: running the API as root needs api.allow_root: true")
        return "running as root (api.allow_root is true)"
    drop_to(account)
    missing = unreadable_files(config)
    if missing:
        raise ConfigError(
            f"user '{account.name}' cannot read what the API needs: {'; '.join(missing)} "
            "(make it readable by the API's group)"
        )
    group = grp.getgrgid(account.gid).gr_name
    return f"running as {account.name}:{group} (uid {account.uid}, gid {account.gid})"
