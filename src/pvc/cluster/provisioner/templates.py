"""System, network and storage templates: their v1 shapes, and adding, changing and
removing them (and the networks and disks of the latter two).

A template a profile uses cannot be removed (the database refuses; the message names it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.provisioner import validation as check
from pvc.db.models import (
    NetworkTemplate,
    NetworkTemplateNet,
    Profile,
    StorageTemplate,
    StorageTemplateDisk,
    SystemTemplate,
)

KINDS = {"system": SystemTemplate, "network": NetworkTemplate, "storage": StorageTemplate}
MAX_VNI = 2**24 - 1
MAX_DISK_GB = 1024 * 1024


# -- shapes ---------------------------------------------------------------------------------


def system_view(row: SystemTemplate) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "vcpu_count": row.vcpu_count,
        "vram_mb": row.vram_mb,
        "serial": row.serial,
        "vnc": row.vnc,
        "vnc_bind": row.vnc_bind,
        "node_limit": row.node_limit,
        "node_selector": row.node_selector,
        "node_autostart": row.node_autostart,
        "migration_method": row.migration_method,
        "migration_max_downtime": row.migration_max_downtime,
    }


def net_view(row: NetworkTemplateNet) -> dict:
    return {"id": row.id, "network_template": row.network_template, "vni": row.vni}


def network_view(row: NetworkTemplate) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "mac_template": row.mac_template,
        "networks": [net_view(net) for net in row.networks],
    }


def disk_view(row: StorageTemplateDisk) -> dict:
    return {
        "id": row.id,
        "storage_template": row.storage_template,
        "disk_id": row.disk_id,
        "pool": row.pool,
        "source_volume": row.source_volume,
        "disk_size_gb": row.disk_size_gb,
        "filesystem": row.filesystem,
        "filesystem_args": list(row.filesystem_args or []),
        "mountpoint": row.mountpoint,
    }


def storage_view(row: StorageTemplate) -> dict:
    return {"id": row.id, "name": row.name, "disks": [disk_view(disk) for disk in row.disks]}


VIEWS = {"system": system_view, "network": network_view, "storage": storage_view}


def list_templates(session: Session, kind: str, limit: str | None = None) -> list[dict]:
    return [VIEWS[kind](row) for row in check.listed(session, KINDS[kind], limit)]


def all_templates(session: Session, limit: str | None = None) -> dict[str, list[dict]]:
    """``GET /provisioner/template``: every kind."""
    return {f"{kind}-templates": list_templates(session, kind, limit) for kind in KINDS}


def get_template(session: Session, kind: str, name: str) -> dict:
    return VIEWS[kind](check.by_name(session, KINDS[kind], name, f"{kind.capitalize()} template"))


# -- system templates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemSettings:
    """What a system template sets (None: unchanged on modify, the default on add)."""

    vcpus: int | None = None
    vram: int | None = None
    serial: bool | None = None
    vnc: bool | None = None
    vnc_bind: str | None = None
    node_limit: str | None = None
    node_selector: str | None = None
    node_autostart: bool | None = None
    migration_method: str | None = None
    migration_max_downtime: int | None = None

    def checked(self) -> SystemSettings:
        check.bounded(self.vcpus, 1, check.MAX_VCPUS, "vcpus")
        check.bounded(self.vram, 32, check.MAX_VRAM_MB, "vram (MiB)")
        check.choice(self.node_selector, check.NODE_SELECTORS, "node_selector")
        check.choice(self.migration_method, check.MIGRATION_METHODS, "migration_method")
        check.bounded(self.migration_max_downtime, 1, 3_600_000, "migration_max_downtime (ms)")
        return SystemSettings(
            **{
                **self.__dict__,
                "vnc_bind": check.address(self.vnc_bind, "vnc_bind"),
                "node_limit": check.node_limit(self.node_limit),
            }
        )


def add_system(session: Session, name: str, settings: SystemSettings) -> str:
    check.name(name, "System template")
    check.unique(session, SystemTemplate, name, "System template")
    s = settings.checked()
    if s.vcpus is None or s.vram is None:
        raise ClusterError("vcpus and vram are required")
    session.add(
        SystemTemplate(
            name=name,
            vcpu_count=s.vcpus,
            vram_mb=s.vram,
            serial=bool(s.serial),
            vnc=bool(s.vnc),
            vnc_bind=s.vnc_bind if s.vnc else None,
            node_limit=s.node_limit,
            node_selector=s.node_selector,
            node_autostart=bool(s.node_autostart),
            migration_method=s.migration_method,
            migration_max_downtime=s.migration_max_downtime,
        )
    )
    return f'Added new system template "{name}"'


def modify_system(session: Session, name: str, settings: SystemSettings) -> str:
    row = check.by_name(session, SystemTemplate, name, "System template")
    s = settings.checked()
    changes = {
        "vcpu_count": s.vcpus,
        "vram_mb": s.vram,
        "serial": s.serial,
        "vnc": s.vnc,
        "vnc_bind": s.vnc_bind,
        "node_limit": s.node_limit,
        "node_selector": s.node_selector,
        "node_autostart": s.node_autostart,
        "migration_method": s.migration_method,
        "migration_max_downtime": s.migration_max_downtime,
    }
    for column, value in changes.items():
        if value is not None:
            setattr(row, column, value)
    return f'Modified system template "{name}"'


# -- network templates --------------------------------------------------------------------------------


def add_network(session: Session, name: str, mac_template: str | None) -> str:
    check.name(name, "Network template")
    check.unique(session, NetworkTemplate, name, "Network template")
    if mac_template and (len(mac_template) > 64 or not check.MAC_TEMPLATE.fullmatch(mac_template)):
        raise ClusterError(
            f"mac_template '{mac_template}' may hold only hex digits, ':', {{prefix}}, {{vmid}} and {{netid}}"
        )
    session.add(NetworkTemplate(name=name, mac_template=mac_template or None))
    return f'Added new network template "{name}"'


def _vni(value: str | int) -> int:
    try:
        vni = int(value)
    except (TypeError, ValueError):
        raise ClusterError(f"vni '{value}' is not a number") from None
    check.bounded(vni, 1, MAX_VNI, "vni")
    return vni


def add_network_vni(session: Session, name: str, vni: str | int, permit_duplicate: bool = False) -> str:
    row = check.by_name(session, NetworkTemplate, name, "Network template")
    number = _vni(vni)
    if not permit_duplicate and any(net.vni == number for net in row.networks):
        raise ClusterError(f"Network template '{name}' already has VNI {number} (permit_duplicate allows it)")
    row.networks.append(NetworkTemplateNet(vni=number))
    return f'Added network VNI {number} to network template "{name}"'


def list_network_vnis(session: Session, name: str) -> list[dict]:
    return [
        net_view(net) for net in check.by_name(session, NetworkTemplate, name, "Network template").networks
    ]


def get_network_vni(session: Session, name: str, vni: str) -> dict:
    row = check.by_name(session, NetworkTemplate, name, "Network template")
    number = _vni(vni)
    for net in row.networks:
        if net.vni == number:
            return net_view(net)
    raise NotFoundError(f"Network template '{name}' has no VNI {number}")


def remove_network_vni(session: Session, name: str, vni: str) -> str:
    row = check.by_name(session, NetworkTemplate, name, "Network template")
    number = _vni(vni)
    for net in reversed(row.networks):  # the last one added of duplicates
        if net.vni == number:
            row.networks.remove(net)
            return f'Removed network VNI {number} from network template "{name}"'
    raise NotFoundError(f"Network template '{name}' has no VNI {number}")


# -- storage templates --------------------------------------------------------------------------------


def add_storage(session: Session, name: str) -> str:
    check.name(name, "Storage template")
    check.unique(session, StorageTemplate, name, "Storage template")
    session.add(StorageTemplate(name=name))
    return f'Added new storage template "{name}"'


@dataclass(frozen=True)
class DiskSettings:
    pool: str
    source_volume: str | None = None
    disk_size: int | None = None
    filesystem: str | None = None
    filesystem_args: tuple[str, ...] = ()
    mountpoint: str | None = None


def _checked_disk(disk_id: str, d: DiskSettings) -> DiskSettings:
    if not check.DISK_ID.fullmatch(disk_id or ""):
        raise ClusterError(f"disk_id '{disk_id}' is not a disk name like sda or vdb")
    check.name(d.pool, "Pool")
    if d.source_volume:  # a volume of the pool (copied), or volume@snapshot (cloned copy-on-write)
        volume, at, snapshot = d.source_volume.partition("@")
        check.name(volume, "Source volume")
        if at:
            check.name(snapshot, "Source snapshot")
    if d.disk_size is None and not d.source_volume:
        raise ClusterError("a disk needs disk_size (GB), source_volume (a volume to clone) or both (resized)")
    check.bounded(d.disk_size, 1, MAX_DISK_GB, "disk_size (GB)")
    check.choice(d.filesystem, check.FILESYSTEMS, "filesystem")
    for arg in d.filesystem_args:
        if not check.FILESYSTEM_ARG.fullmatch(arg):
            raise ClusterError(f"filesystem_arg '{arg}' holds characters that are not allowed")
    if d.filesystem_args and not d.filesystem:
        raise ClusterError("filesystem_arg needs a filesystem")
    if d.mountpoint:
        if not d.filesystem or d.filesystem == "swap":
            raise ClusterError("a mountpoint needs a filesystem other than swap")
        if not check.MOUNTPOINT.fullmatch(d.mountpoint) or "/../" in d.mountpoint + "/":
            raise ClusterError(f"mountpoint '{d.mountpoint}' is not an absolute path")
    return d


def add_storage_disk(session: Session, name: str, disk_id: str, disk: DiskSettings) -> str:
    row = check.by_name(session, StorageTemplate, name, "Storage template")
    d = _checked_disk(disk_id, disk)
    if any(existing.disk_id == disk_id for existing in row.disks):
        raise ClusterError(f"Storage template '{name}' already has disk {disk_id}")
    if d.mountpoint and any(existing.mountpoint == d.mountpoint for existing in row.disks):
        raise ClusterError(f"Storage template '{name}' already mounts a disk at {d.mountpoint}")
    row.disks.append(
        StorageTemplateDisk(
            disk_id=disk_id,
            pool=d.pool,
            source_volume=d.source_volume or None,
            disk_size_gb=d.disk_size,
            filesystem=d.filesystem,
            filesystem_args=list(d.filesystem_args),
            mountpoint=d.mountpoint or None,
        )
    )
    return f'Added disk {disk_id} to storage template "{name}"'


def list_storage_disks(session: Session, name: str) -> list[dict]:
    return [disk_view(d) for d in check.by_name(session, StorageTemplate, name, "Storage template").disks]


def _disk(session: Session, name: str, disk_id: str) -> tuple[StorageTemplate, StorageTemplateDisk]:
    row = check.by_name(session, StorageTemplate, name, "Storage template")
    for disk in row.disks:
        if disk.disk_id == disk_id:
            return row, disk
    raise NotFoundError(f"Storage template '{name}' has no disk {disk_id}")


def get_storage_disk(session: Session, name: str, disk_id: str) -> dict:
    return disk_view(_disk(session, name, disk_id)[1])


def remove_storage_disk(session: Session, name: str, disk_id: str) -> str:
    row, disk = _disk(session, name, disk_id)
    row.disks.remove(disk)
    return f'Removed disk {disk_id} from storage template "{name}"'


# -- removal --------------------------------------------------------------------------------


def remove_template(session: Session, kind: str, name: str) -> str:
    model = KINDS[kind]
    row = check.by_name(session, model, name, f"{kind.capitalize()} template")
    column = getattr(Profile, f"{kind}_template")
    users = session.scalars(select(Profile.name).where(column == row.id).order_by(Profile.name)).all()
    if users:
        raise ClusterError(f"{kind.capitalize()} template '{name}' is used by profile(s) {', '.join(users)}")
    session.delete(row)
    try:
        session.flush()
    except IntegrityError:  # a profile took it up meanwhile
        raise ClusterError(f"{kind.capitalize()} template '{name}' is used by a profile") from None
    return f'Removed {kind} template "{name}"'
