"""Exported VM snapshots on disk: where they may be, their layout, and their manifests.

An export of snapshot ``S`` of VM ``V`` under ``PATH`` is the directory ``PATH/V/S`` holding
one file per volume (``<pool>.<volume>.img``, a raw image, for a full export;
``<pool>.<volume>.diff`` for an incremental one, see :mod:`pvc.storage.image_transfer`) and
``manifest.json``, written last: an export without it is incomplete. The manifest says
what the export is (``type`` full or incremental, its ``parent``), what the VM was (its
metadata and the snapshot's XML) and each file's volume, sizes and SHA-256.

``PATH`` must lie under one of the node's ``backup.paths`` (after following symbolic links):
the node daemon reads and writes these files as root.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pvc.cluster.vm.snapshots import NAME as SNAPSHOT_NAME
from pvc.storage import pools
from pvc.storage.image_transfer import file_sha256
from pvc.storage.images import check_image_name

MANIFEST = "manifest.json"
FULL, INCREMENTAL = "full", "incremental"
#: The export format this module writes (and the only one it reads).
FORMAT = 1


class ExportError(Exception):
    """An export or import path, manifest or file that cannot be used (the message says why)."""


def allowed_directory(path: object, roots: tuple[str, ...] | list[str]) -> Path:
    """``path`` resolved, if it is an absolute directory under one of ``roots``; else ExportError."""
    if not roots:
        raise ExportError("no backup paths are configured (backup.paths): exports and imports are refused")
    if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path:
        raise ExportError(f"path {path!r} must be absolute")
    resolved = Path(os.path.realpath(path))
    for root in roots:
        base = Path(os.path.realpath(root))
        if resolved == base or base in resolved.parents:
            if not resolved.is_dir():
                raise ExportError(f"{path} is not a directory")
            return resolved
    raise ExportError(f"{path} is not under a backup path of this cluster ({', '.join(roots)})")


def no_links_below(root: Path, target: Path) -> Path:
    """``target`` if no component of it below ``root`` is a symbolic link (the node follows
    none: a link placed in a backup path must not lead it elsewhere); else ExportError."""
    try:
        parts = target.relative_to(root).parts
    except ValueError:
        raise ExportError(f"{target} is not under {root}") from None
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise ExportError(f"{current} is a symbolic link; links are not followed in backup paths")
    return target


def export_directory(root: Path, vm: str, snapshot: str) -> Path:
    """Where the export of ``vm``'s snapshot ``snapshot`` lives under ``root``."""
    return root / vm / snapshot


def volume_file(pool: str, volume: str, kind: str) -> str:
    """The file name of one volume's data in an export."""
    return f"{pool}.{volume}.{'img' if kind == FULL else 'diff'}"


@dataclass(frozen=True)
class ExportedFile:
    """One volume's file in an export."""

    pool: str
    volume: str
    file: str
    volume_size: int
    file_size: int
    sha256: str
    data_bytes: int = 0


@dataclass(frozen=True)
class Manifest:
    """What an export holds (``manifest.json``)."""

    type: str
    vm: str
    uuid: str
    snapshot: str
    parent: str | None
    #: When the snapshot was taken, and when it was exported (UNIX times).
    taken: float
    exported: float
    consistency: str
    #: The VM's metadata (as PVC records it) and the snapshot's domain XML.
    meta: dict[str, Any]
    xml: str
    files: list[ExportedFile] = field(default_factory=list)
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        """The manifest in ``text``; ExportError (naming ``where``) if it is not one."""
        try:
            data = json.loads(text)
            files = [ExportedFile(**item) for item in data.pop("files")]
            manifest = cls(**data, files=files)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ExportError(f"{where} is not a PVC export manifest: {error}") from None
        if manifest.format != FORMAT or manifest.type not in (FULL, INCREMENTAL):
            raise ExportError(f"{where}: unknown format {manifest.format} or type {manifest.type!r}")
        if (manifest.type == INCREMENTAL) != bool(manifest.parent):
            raise ExportError(f"{where}: an incremental export names its parent, a full one none")
        for name in (manifest.snapshot, manifest.parent or "x"):
            if not SNAPSHOT_NAME.fullmatch(str(name)):
                raise ExportError(f"{where}: {name!r} is not a snapshot name")
        for item in manifest.files:
            try:
                pools.check_name(item.pool)
                check_image_name(item.volume)
            except ValueError as error:
                raise ExportError(f"{where}: {error}") from None
            if item.file != volume_file(item.pool, item.volume, manifest.type):
                raise ExportError(f"{where}: file {item.file!r} is not the one of {item.pool}/{item.volume}")
        return manifest


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` (last: it marks the export complete)."""
    partial = directory / (MANIFEST + ".partial")
    partial.write_text(manifest.to_json())
    partial.replace(directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of the export in ``directory``; ExportError if there is none or it is bad."""
    path = directory / MANIFEST
    try:
        text = path.read_text()
    except OSError as error:
        raise ExportError(f"no complete export in {directory}: {error.strerror}") from None
    return Manifest.from_json(text, str(path))


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Check every file the manifest lists against its size and SHA-256 (ExportError naming
    the first that differs); nothing is imported from an export that fails this."""
    for item in manifest.files:
        if os.path.basename(item.file) != item.file or item.file in ("", ".", ".."):
            raise ExportError(f"manifest of {directory}: file name {item.file!r} is not a plain name")
        path = directory / item.file
        if path.is_symlink():
            raise ExportError(f"{path} is a symbolic link; links are not followed in backup paths")
        try:
            size = path.stat().st_size
        except OSError:
            raise ExportError(f"{path} is missing") from None
        if size != item.file_size:
            raise ExportError(f"{path} is {size} bytes, the manifest says {item.file_size}")
        if file_sha256(path) != item.sha256:
            raise ExportError(f"{path} does not match its checksum in the manifest")


def chain(root: Path, vm: str, snapshot: str) -> list[tuple[Path, Manifest]]:
    """The exports to import for ``vm``'s ``snapshot``, oldest first: its full export, then
    each incremental up to it. ExportError if one is missing (an incremental's parent was
    not exported here), names another VM, or the chain loops."""
    found: list[tuple[Path, Manifest]] = []
    name: str | None = snapshot
    while name is not None:
        if any(manifest.snapshot == name for _, manifest in found):
            raise ExportError(f"the exports of {vm} form a loop at {name}")
        directory = no_links_below(root, export_directory(root, vm, name))
        if not directory.is_dir() and found:
            raise ExportError(f"the parent {name} of {found[-1][1].snapshot} was not exported to {root / vm}")
        manifest = read_manifest(directory)
        if manifest.vm != vm or manifest.snapshot != name:
            raise ExportError(f"{directory} holds {manifest.vm}/{manifest.snapshot}, not {vm}/{name}")
        found.append((directory, manifest))
        name = manifest.parent
    found.reverse()
    volumes = {(item.pool, item.volume) for item in found[0][1].files}
    for directory, manifest in found[1:]:
        if {(item.pool, item.volume) for item in manifest.files} != volumes:
            raise ExportError(f"{directory} has other volumes than the full export it builds on")
    return found
