"""OVA appliances: an uploaded ``.ova`` (a tar of an OVF descriptor and its disks) read as
it arrives, each disk converted into an RBD volume, and the appliance recorded with a
system template and an ``ova`` profile of its name, from which VMs are created.

The archive must start with its descriptor (as the OVF standard has it); every later
member must be a plain file the descriptor names, of the size it declares, no larger than
its disk's capacity allows. Anything else refuses the upload (400), and the volumes made
so far are removed again: a refused OVA leaves nothing behind.
"""

from __future__ import annotations

import io
import logging
import math
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner import validation as check
from pvc.cluster.provisioner.ovf import MAX_DESCRIPTOR, Ovf, OvfError, parse
from pvc.cluster.storage.access import mapped_errors
from pvc.cluster.storage.actions import StorageOps
from pvc.cluster.storage.queries import pool_names
from pvc.cluster.storage.upload import size_limit, upload
from pvc.db.engine import Database
from pvc.db.models import Ova, OvaVolume, Profile, SystemTemplate
from pvc.storage import disk_locks, volumes

log = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
#: The volume holding disk ``disk_id`` of OVA ``name``.
VOLUME_NAME = "ova_{name}_{disk_id}"


def view(row: Ova) -> dict:
    """An OVA in the v1 shape."""
    return {
        "id": row.id,
        "name": row.name,
        "volumes": [
            {
                "disk_id": volume.disk_id,
                "disk_size_gb": str(volume.disk_size_gb),
                "pool": volume.pool,
                "volume_name": volume.volume_name,
                "volume_format": volume.volume_format,
            }
            for volume in row.volumes
        ],
    }


def list_ovas(session: Session, limit: str | None = None) -> list[dict]:
    return [view(row) for row in check.listed(session, Ova, limit)]


def get_ova(session: Session, name: str) -> dict:
    return view(check.by_name(session, Ova, name, "OVA"))


class _Chunks(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (what tarfile reads from)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


#: The most an extended tar header (pax, GNU long name) of an OVA may hold: tarfile reads
#: such a header whole into memory.
MAX_EXTENDED_HEADER = 64 * 1024


class _BoundedTarInfo(tarfile.TarInfo):
    """Tar headers whose extended headers are refused beyond MAX_EXTENDED_HEADER bytes."""

    def _proc_pax(self, tarfile_: tarfile.TarFile):  # type: ignore[override]
        if self.size > MAX_EXTENDED_HEADER:
            raise tarfile.HeaderError(f"an extended header of {self.size} bytes")
        return super()._proc_pax(tarfile_)

    def _proc_gnulong(self, tarfile_: tarfile.TarFile):  # type: ignore[override]
        if self.size > MAX_EXTENDED_HEADER:
            raise tarfile.HeaderError(f"a long-name header of {self.size} bytes")
        return super()._proc_gnulong(tarfile_)


def _disk_id(index: int) -> str:
    return f"sd{chr(ord('a') + index)}"


class _Import:
    """One upload: the volumes it made so far (removed again if it fails)."""

    def __init__(self, ops: StorageOps, state_dir: Path, name: str, pool: str) -> None:
        self.ops, self.state_dir, self.name, self.pool = ops, state_dir, name, pool
        self.made: list[str] = []
        self.ovf: Ovf | None = None
        self.descriptor = b""
        self.written: dict[str, tuple[str, int]] = {}  # href -> (volume, capacity)

    def read(self, chunks: Iterable[bytes]) -> None:
        try:
            stream = io.BufferedReader(_Chunks(chunks), MIB)
            with tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo) as archive:
                for member in archive:
                    self._member(archive, member)
        except tarfile.TarError as error:
            raise OvfError(f"the upload is not a whole OVA (a tar archive): {error}") from None
        if self.ovf is None:
            raise OvfError("the OVA holds no OVF descriptor")
        missing = sorted({disk.href for disk in self.ovf.disks} - set(self.written))
        if missing:
            raise OvfError(f"the OVA lacks the disk files its OVF names: {', '.join(missing)}")

    def _member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = member.name
        if not member.isfile() or "/" in name or name.startswith("."):
            raise OvfError(f"the OVA holds '{name[:80]}', which is not a plain file at its top level")
        if self.ovf is None:
            if not name.endswith(".ovf") or member.size > MAX_DESCRIPTOR:
                raise OvfError("an OVA must start with its OVF descriptor (at most 1 MiB)")
            stream = archive.extractfile(member)
            assert stream is not None
            self.descriptor = stream.read()
            self.ovf = parse(self.descriptor)
            return
        if name.endswith((".mf", ".cert")):
            return  # manifests and certificates are not checked: the sizes are
        disk = self.ovf.disk_for(name)
        if disk is None or name in self.written:
            raise OvfError(f"the OVA holds '{name[:80]}', which its OVF does not name (or names once)")
        if disk.file_size is not None and disk.file_size != member.size:
            raise OvfError(
                f"disk file {name} is {member.size} bytes, not the {disk.file_size} its OVF declares"
            )
        capacity = math.ceil(disk.capacity / MIB) * MIB
        limit = size_limit(capacity, disk.image_format)
        if member.size > limit:
            raise OvfError(
                f"disk file {name} ({member.size} bytes) is larger than its {disk.capacity}-byte disk allows"
            )
        volume = VOLUME_NAME.format(name=self.name, disk_id=_disk_id(self.ovf.disks.index(disk)))
        self.ops.add_volume(self.pool, volume, str(capacity))
        self.made.append(volume)
        stream = archive.extractfile(member)
        assert stream is not None
        chunks = iter(lambda: stream.read(MIB), b"")
        raw_size = member.size if disk.image_format == "raw" else None
        upload(self.ops, self.state_dir, self.pool, volume, disk.image_format, chunks, raw_size, limit)
        self.written[name] = (volume, disk.capacity)

    def undo(self) -> None:
        for volume in self.made:
            try:
                with mapped_errors(self.ops.access):
                    disk_locks.clear_stale(self.ops.access.client(), self.pool, volume)
                    volumes.remove(self.ops.access.client(), self.pool, volume)
                self.ops.refresh_volume(self.pool, volume)
            except Exception as error:  # reported, and the rest still removed
                log.error("could not remove volume %s/%s of a refused OVA: %s", self.pool, volume, error)

    def record(self, session: Session) -> None:
        """The OVA, its volumes, its system template and its profile (all named after it)."""
        assert self.ovf is not None
        ova = Ova(name=self.name, ovf=self.descriptor.decode(errors="replace"))
        for index, disk in enumerate(self.ovf.disks):
            volume, capacity = self.written[disk.href]
            ova.volumes.append(
                OvaVolume(
                    pool=self.pool,
                    volume_name=volume,
                    volume_format="raw",
                    disk_id=_disk_id(index),
                    disk_size_gb=max(1, math.ceil(capacity / GIB)),
                )
            )
        system = SystemTemplate(
            name=self.name,
            vcpu_count=self.ovf.vcpus,
            vram_mb=self.ovf.memory_mib,
            serial=True,
            vnc=False,
            node_autostart=False,
        )
        session.add_all([ova, system])
        session.flush()
        session.add(
            Profile(name=self.name, profile_type="ova", system_template=system.id, ova=ova.id, arguments=[])
        )


def import_ova(
    database: Database, ops: StorageOps, state_dir: Path, *, name: str, pool: str, chunks: Iterable[bytes]
) -> str:
    """Read the OVA arriving as ``chunks`` into volumes of ``pool`` and record it as ``name``."""
    check.name(name, "OVA")
    with database.session() as session:
        check.unique(session, Ova, name, "OVA")
        check.unique(session, Profile, name, "Profile")
        check.unique(session, SystemTemplate, name, "System template")
    if pool not in pool_names(ops.cluster):
        raise ClusterError(f"Pool '{pool}' does not exist")
    work = _Import(ops, state_dir, name, pool)
    try:
        work.read(chunks)
        with database.session() as session:
            work.record(session)
    except BaseException:
        work.undo()
        raise
    assert work.ovf is not None
    return f"Imported OVA '{name}' ({len(work.ovf.disks)} disks into pool {pool}) with profile '{name}'"


def remove_ova(database: Database, ops: StorageOps, name: str) -> str:
    """Remove OVA ``name``: its own profile and system template (when nothing else uses
    them), its record and its volumes. Refused while other profiles use it."""
    with database.session() as session:
        row = check.by_name(session, Ova, name, "OVA")
        profiles = session.scalars(select(Profile).where(Profile.ova == row.id)).all()
        others = sorted(p.name for p in profiles if p.name != name)
        if others:
            raise ClusterError(f"OVA '{name}' is used by profiles {', '.join(others)}")
        disks = [(volume.pool, volume.volume_name) for volume in row.volumes]
        for profile in profiles:
            system = profile.system_template
            session.delete(profile)
            session.flush()
            template = session.get(SystemTemplate, system)
            used = session.scalar(select(Profile).where(Profile.system_template == system))
            if template is not None and template.name == name and used is None:
                session.delete(template)
        session.delete(row)
    failed = []
    for pool, volume in disks:
        try:
            ops.remove_volume(pool, volume)
        except ClusterError as error:
            failed.append(f"{pool}/{volume}: {error}")
    message = f"Removed OVA '{name}'"
    return message + (f"; could not remove {'; '.join(failed)}" if failed else "")
