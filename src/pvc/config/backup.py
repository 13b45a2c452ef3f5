"""Where VM snapshots may be exported to and imported from, and the autobackup and
automirror schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from pvc.config.base import _Section


def _no_parent_steps(path: str) -> str:
    if ".." in path.split("/"):
        raise ValueError("a backup path may not contain '..'")
    return path


#: An absolute directory path without ``..`` components.
BackupRoot = Annotated[str, Field(pattern=r"^/", max_length=400), AfterValidator(_no_parent_steps)]
#: A VM tag as the schedules match it.
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\s:]+$")]
#: A command line (split like a shell would, run without one) for mounting backup storage.
Command = Annotated[str, Field(min_length=1, max_length=1000)]
#: Seconds between scheduled runs; 0: the schedule runs only on demand.
Interval = Annotated[float, Field(ge=0, le=366 * 86400)]
_API_URL = r"https?://[^/?#\s]+(/[^?#\s]*)?"
#: The URL of another cluster's API.
ApiUri = Annotated[str, Field(pattern=rf"^{_API_URL}$", max_length=400)]
#: An API that sends may go to: a URL prefix, or ``*`` for any.
SendDestination = Annotated[str, Field(pattern=rf"^(\*|{_API_URL})$", max_length=400)]
#: An e-mail address a scheduled run's report goes to.
Address = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+$", max_length=200)]


def _origin_and_path(uri: str) -> tuple[str, str, int | None, str] | None:
    try:
        parts = urlsplit(uri)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port, parts.path.rstrip("/")


def _under(uri: str, prefix: str) -> bool:
    """Whether API URL ``uri`` is at or under URL ``prefix``: the same scheme, host and port
    (ports as given or the scheme's), and a path equal to the prefix's or below it."""
    have, allowed = _origin_and_path(uri), _origin_and_path(prefix)
    if have is None or allowed is None or have[:3] != allowed[:3]:
        return False
    return not allowed[3] or have[3] == allowed[3] or have[3].startswith(allowed[3] + "/")


class AutobackupSection(_Section):
    """Backups of the VMs with one of ``tags`` (``pvc vm autobackup``, ``cluster.autobackup``).

    Each run backs every such VM up under ``path``: whole on its first run and every
    ``full_interval`` backups, else as the changes since its last full backup (whose
    snapshot is kept for that). The newest ``full_retention`` full backups are kept with
    the incremental backups built on them; older ones are removed, directories and
    snapshots. ``mount_commands`` run before a run and ``unmount_commands`` after it. The
    primary starts a run every ``interval`` seconds (0: only on demand), reported to
    ``report_to``.
    """

    path: BackupRoot | None = None
    tags: list[Tag] = Field(default=["autobackup"], max_length=32)
    full_interval: int = Field(7, ge=1, le=1000)
    full_retention: int = Field(2, ge=1, le=1000)
    interval: Interval = 0.0
    report_to: list[Address] = Field(default=[], max_length=32)
    mount_commands: list[Command] = Field(default=[], max_length=16)
    unmount_commands: list[Command] = Field(default=[], max_length=16)


class MirrorDestination(_Section):
    """Another cluster's API that automirrors send to; its key is read from ``key_file``
    (mode 0600 or 0640)."""

    uri: ApiUri
    key_file: Path
    verify_ssl: bool = True
    pool: str | None = Field(None, max_length=100)


class AutomirrorSection(_Section):
    """Mirrors of the VMs with one of ``tags`` (``pvc vm automirror``, ``cluster.automirror``).

    A VM tagged ``<tag>`` goes to ``default_destination``, one tagged ``<tag>:<name>`` to
    destination ``name``. Each run takes a mirror snapshot of each such VM and sends it;
    the newest ``keep_snapshots`` mirror snapshots are kept on both clusters. The primary
    starts a run every ``interval`` seconds (0: only on demand), reported to ``report_to``
    (only when a VM failed, with ``report_errors_only``).
    """

    destinations: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")], MirrorDestination] = {}
    default_destination: str | None = None
    tags: list[Tag] = Field(default=["automirror"], max_length=32)
    keep_snapshots: int = Field(7, ge=1, le=1000)
    interval: Interval = 0.0
    report_to: list[Address] = Field(default=[], max_length=32)
    report_errors_only: bool = False

    @model_validator(mode="after")
    def _known_default(self) -> AutomirrorSection:
        if self.default_destination is not None and self.default_destination not in self.destinations:
            raise ValueError(f"default_destination {self.default_destination!r} is not in destinations")
        return self


class BackupSection(_Section):
    """Directories on the primary coordinator for VM snapshot exports and imports, and the
    schedules that use them.

    Export and import paths given to the API must lie under one of ``paths`` (after
    following symbolic links): the node daemon that writes and reads them runs as root, so
    no client may name any other place. None configured: exports and imports are refused.
    Snapshots, mirrors and promotions an operator asks for go only to the APIs under
    ``send_destinations`` (URL prefixes; ``*``: any) or named as automirror destinations, so
    that no key holder can aim the primary at an arbitrary address; none: refused.
    Reports of scheduled runs go by ``sendmail`` (from ``email_from``) to the addresses a
    run is given.
    """

    paths: list[BackupRoot] = Field(default=[], max_length=32)
    send_destinations: list[SendDestination] = Field(default=[], max_length=64)
    autobackup: AutobackupSection = AutobackupSection()
    automirror: AutomirrorSection = AutomirrorSection()
    sendmail: Path = Path("/usr/sbin/sendmail")
    email_from: Address = "pvc@localhost"

    def allows_destination(self, uri: str) -> bool:
        """Whether sends may go to the API at ``uri`` (see the class)."""
        entries = [*self.send_destinations, *(d.uri for d in self.automirror.destinations.values())]
        return any(entry == "*" or _under(uri, entry) for entry in entries)

    @model_validator(mode="after")
    def _autobackup_under_paths(self) -> BackupSection:
        path = self.autobackup.path
        if path is not None and not any(
            path == root or path.startswith(root.rstrip("/") + "/") for root in self.paths
        ):
            raise ValueError(f"autobackup.path {path} is not under one of backup.paths")
        return self
