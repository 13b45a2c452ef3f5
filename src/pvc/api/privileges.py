"""pvcapid's start as root and its switch to an unprivileged account.

pvcapid starts as root (the node daemon runs it), reads what only root may read (the TLS
private key, and any credential file that is not group-readable by the API's group),
prepares the one directory it writes (``<state_dir>/uploads``), and then becomes
``api.user``/``api.group`` for good. Everything it opens later must be readable by that
account: the Ceph ``ceph_conf`` and ``ceph_keyring`` (owned ``root:<api group>``, mode
0640), the Python installation and the configuration file's directory path.
"""

from __future__ import annotations

import grp
import os
import ssl
from pathlib import Path

from pvc import accounts
from pvc.accounts import Account, drop_to
from pvc.config import NodeConfig
from pvc.errors import ConfigError

#: The directory under ``state_dir`` where pvcapid spools uploaded images.
UPLOADS = "uploads"


def resolve_account(config: NodeConfig) -> Account:
    """``api.user``/``api.group`` as ids; ConfigError naming the key if either does not exist."""
    return accounts.resolve_account(config.api.user, config.api.group, key="api")


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


__all__ = ["Account", "become_unprivileged", "drop_to", "resolve_account", "tls_context", "unreadable_files"]
