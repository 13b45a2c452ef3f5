"""cephx keys: the capabilities of each PVC role, new secrets, keyring files.

PVC reaches Ceph as three clients, each with only what its code sends (see
docs/storage.md, "Authentication"):

- ``node``: the node daemon. It creates, replaces and removes OSDs (``osd new`` with the
  new OSD's own key, in/out, reweight; destroy, purge and safe-to-destroy through the
  manager), refreshes the storage figures (reads, ``osd df``, ``pg dump``, each OSD's
  ``perf dump``, which OSDs answer only to ``osd 'allow *'``), breaks dead VMs' RBD
  locks (blocklisting their holders) and runs benchmarks in any RBD pool.
- ``api``: ``pvcapid``. Pools (create; set size, min_size and PG counts; enable the
  ``rbd`` application; delete; the CRUSH rule of a tier), volumes and snapshots, OSD
  in/out and the cluster-wide OSD flags. Nothing else: no ``config``, ``mon``,
  ``auth`` or ``config-key`` command.
- ``vm``: QEMU opening VM disks (``profile rbd``), its key held by a libvirt secret.

A key is the base64 form of Ceph's ``CryptoKey`` encoding: type (AES), creation time and
16 random bytes, the same as ``ceph-authtool --gen-print-key`` prints.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import os
import re
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pvc.storage.errors import StorageError

#: The PVC roles that hold a cephx key.
ROLES = ("node", "api", "vm")
#: Each role's usual cephx user (what the lab and the deployment examples use).
DEFAULT_USERS = {"node": "client.pvc-node", "api": "client.pvc-api", "vm": "client.pvc-vm"}

_CRYPTO_AES = 1
_SECRET_BYTES = 16


def _commands(*names: str) -> list[str]:
    return [f"allow command '{name}'" for name in names]


@dataclass(frozen=True)
class Caps:
    """A cephx user's capabilities per daemon type, as ``ceph auth`` spells them."""

    mon: str
    osd: str
    mgr: str

    def items(self) -> list[tuple[str, str]]:
        """``(daemon type, capability)`` pairs, in ``ceph auth caps`` order."""
        return [("mon", self.mon), ("osd", self.osd), ("mgr", self.mgr)]

    def auth_args(self) -> list[str]:
        """The arguments after the user in ``ceph auth get-or-create <user> ...``."""
        return [part for pair in self.items() for part in pair]


#: ``osd pool set`` variables the API changes.
_API_POOL_VARS = "^(size|min_size|pg_num|pgp_num)$"

#: What each role may do. ``profile rbd`` on the monitors covers reading the maps and
#: blocklisting a dead lock holder; on the OSDs, reading and writing RBD images in every
#: pool (pools are created at run time); on the manager, librbd's manager commands.
ROLE_CAPS: dict[str, Caps] = {
    "node": Caps(
        mon=", ".join(
            [
                "profile rbd",
                *_commands("osd new", "osd in", "osd out", "osd down", "osd crush reweight"),
                "allow command 'osd set-group' with flags=noin",
                "allow command 'osd unset-group' with flags=noin",
            ]
        ),
        # OSDs answer "tell" commands (the refresher's per-OSD "perf dump") only to
        # "allow *"; a node holds its OSDs' own keys, which have it, in any case
        osd="allow *",
        mgr=", ".join(
            [
                "profile rbd",
                *_commands("osd df", "pg dump", "osd safe-to-destroy", "osd destroy", "osd purge"),
            ]
        ),
    ),
    "api": Caps(
        mon=", ".join(
            [
                "profile rbd",
                *_commands("osd pool create", "osd pool delete", "osd crush rule create-replicated"),
                f"allow command 'osd pool set' with var regex '{_API_POOL_VARS}'",
                "allow command 'osd pool application enable' with app=rbd",
                *_commands("osd in", "osd out", "osd set", "osd unset"),
                "allow command 'osd unset-group' with flags=noin",
            ]
        ),
        osd="profile rbd",
        mgr=", ".join(["profile rbd", *_commands("osd df", "pg dump")]),
    ),
    "vm": Caps(mon="profile rbd", osd="profile rbd", mgr="profile rbd"),
}

#: The capabilities of the cluster's own daemons and of the administrator.
MON_CAPS = {"mon": "allow *"}
MGR_CAPS = {"mon": "allow profile mgr", "osd": "allow *", "mds": "allow *"}
ADMIN_CAPS = {"mon": "allow *", "osd": "allow *", "mgr": "allow *", "mds": "allow *"}


def new_key(now: float | None = None) -> str:
    """A new random cephx secret in its base64 form."""
    stamp = time.time() if now is None else now
    seconds, nanoseconds = int(stamp), int((stamp % 1) * 1e9)
    header = struct.pack("<HIIH", _CRYPTO_AES, seconds, nanoseconds, _SECRET_BYTES)
    return base64.b64encode(header + os.urandom(_SECRET_BYTES)).decode()


def check_key(key: str) -> str:
    """``key`` if it is a well-formed cephx secret, else ValueError."""
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:
        raise ValueError("a cephx key is base64") from None
    if len(raw) < 12:
        raise ValueError("a cephx key is too short")
    kind, _, _, length = struct.unpack("<HIIH", raw[:12])
    if kind != _CRYPTO_AES or length != len(raw) - 12:
        raise ValueError("not a cephx AES key")
    return key


@dataclass(frozen=True)
class Entry:
    """One entity of a keyring: its name, key and (for a monitor's initial keyring) caps."""

    entity: str
    key: str
    caps: Mapping[str, str] | None = None


def _quoted(value: str) -> str:
    if '"' in value:
        raise ValueError(f"capability {value!r} contains a double quote")
    return f'"{value}"'


def keyring_text(entries: Iterable[Entry]) -> str:
    """The keyring file holding ``entries`` (Ceph's ini format)."""
    lines: list[str] = []
    for entry in entries:
        lines += [f"[{entry.entity}]", f"\tkey = {check_key(entry.key)}"]
        for kind, cap in (entry.caps or {}).items():
            lines.append(f"\tcaps {kind} = {_quoted(cap)}")
    return "\n".join(lines) + "\n"


def write_keyring(path: str | Path, entries: Iterable[Entry], *, group: str | None = None) -> Path:
    """Write a keyring readable by its owner only (0600), or by ``group`` too (0640).

    A ``group`` that does not exist on this host is ignored (the file stays 0600). The
    file is created with its final mode, so the key is never readable by others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gid = None
    if group is not None:
        with contextlib.suppress(KeyError):
            gid = grp.getgrnam(group).gr_gid
    mode = 0o640 if gid is not None else 0o600
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(keyring_text(entries))
        if gid is not None:
            os.chown(tmp, -1, gid)
        os.chmod(tmp, mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


_SECTION = re.compile(r"^\s*\[(?P<entity>[^\]]+)\]\s*$")
_KEY = re.compile(r"^\s*key\s*=\s*(?P<key>\S+)\s*$")


def read_key(path: str | Path, entity: str) -> str:
    """The key of ``entity`` (e.g. ``client.pvc-vm``) in the keyring at ``path``.

    StorageError if the file cannot be read or holds no key for ``entity``.
    """
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise StorageError(f"cannot read keyring {path}: {error.strerror}") from None
    current = None
    for line in text.splitlines():
        section = _SECTION.match(line)
        if section:
            current = section["entity"].strip()
            continue
        found = _KEY.match(line)
        if found and current == entity:
            try:
                return check_key(found["key"])
            except ValueError as error:
                raise StorageError(f"keyring {path}: {entity}: {error}") from None
    raise StorageError(f"keyring {path} holds no key for {entity}")


def _shell_quoted(value: str) -> str:
    """``value`` in double quotes for a POSIX shell (caps quote their commands with ')."""
    for char in ("\\", "$", "`", '"'):
        value = value.replace(char, "\\" + char)
    return f'"{value}"'


def auth_command(role: str, user: str | None = None) -> str:
    """The ``ceph auth get-or-create`` command line that makes role ``role``'s user (for docs
    and deployment): the keyring goes to ``/etc/ceph/ceph.<user>.keyring``."""
    user = user or DEFAULT_USERS[role]
    caps = " ".join(f"{kind} {_shell_quoted(cap)}" for kind, cap in ROLE_CAPS[role].items())
    return f"ceph auth get-or-create {user} {caps} -o /etc/ceph/ceph.{user}.keyring"


def bare_user(entity: str) -> str:
    """A client's name without its ``client.`` prefix (how libvirt and QEMU name it)."""
    return entity.removeprefix("client.")
