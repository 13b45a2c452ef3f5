"""Secrets in files: reading them safely (never world-accessible, never echoed in errors)."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pvc.errors import ConfigError

if TYPE_CHECKING:
    from pvc.config import NodeConfig

#: A user name as the credential files write it: what comes before the first ':'.
CREDENTIAL_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def read_private_text(path: Path, key: str, missing_hint: str) -> str:
    """The text of a secret file; ConfigError (naming ``key``) if it is unsafe or unusable.

    The file must not be readable or writable by other users (mode 0600 or 0640). The
    message never contains the file's content.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{key}: {path} does not exist; {missing_hint}") from None
    except OSError as error:
        raise ConfigError(f"{key}: cannot read {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{key}: {path} is not a regular file")
    if info.st_mode & 0o007:
        raise ConfigError(
            f"{key}: {path} is accessible to every user (mode {stat.S_IMODE(info.st_mode):04o}); "
            "make it 0600 or 0640"
        )
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"{key}: cannot read {path}: {reason}") from None


def credential_lines(text: str) -> list[tuple[str, str]]:
    """``user:password`` lines as pairs (blank lines skipped); ValueError for a bad line
    (the message names the line number only)."""
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        user, sep, password = line.strip().partition(":")
        if not sep or not CREDENTIAL_USER.fullmatch(user) or not password:
            raise ValueError(f"line {number} is not 'name:password'")
        pairs.append((user, password))
    return pairs


class DatabaseCredentials(NamedTuple):
    """The passwords of the database roles (their repr hides them)."""

    superuser: str
    replication: str
    provisioner: str
    rest: str

    def __repr__(self) -> str:
        return "DatabaseCredentials(<hidden>)"

    __str__ = __repr__


def read_database_credentials(path: Path, key: str = "database.auth_file") -> DatabaseCredentials:
    """The database passwords from ``path``: one ``name:password`` line for each of
    ``superuser``, ``replication``, ``provisioner`` and ``rest``."""
    text = read_private_text(
        path, key, f"write 'name:password' lines for {', '.join(DatabaseCredentials._fields)}"
    )
    try:
        found = dict(credential_lines(text))
    except ValueError as error:
        raise ConfigError(f"{key}: {path}: {error}") from None
    missing = [name for name in DatabaseCredentials._fields if name not in found]
    unknown = sorted(set(found) - set(DatabaseCredentials._fields))
    if missing or unknown:
        what = [f"missing {', '.join(missing)}"] if missing else []
        what += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise ConfigError(f"{key}: {path}: {'; '.join(what)}")
    return DatabaseCredentials(**{name: found[name] for name in DatabaseCredentials._fields})


def database_access(config: NodeConfig) -> tuple[str | None, str]:
    """The provisioner role's password, or None and why there is no provisioner database
    here (what the API's provisioner calls then answer, with 503)."""
    if not config.database.enabled:
        return None, "the provisioner database is off (database.enabled: false)"
    try:
        return read_database_credentials(config.database.auth_file).provisioner, ""
    except ConfigError as error:
        return None, str(error)
