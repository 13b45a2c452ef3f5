"""RBD snapshots of volumes: list, create, remove, rename, roll back."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import rbd

from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageExists, StorageNotFound
from pvc.storage.images import check_image_name, drop_snapshot, open_image, snapshot_children


@dataclass
class Snapshot:
    """A snapshot of a volume: the volume's size when taken, protection, clones depending on it."""

    pool: str
    volume: str
    name: str
    id: int
    size: int
    protected: bool
    created: str
    children: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return asdict(self)


def check_name(name: str) -> str:
    """The snapshot name if PVC accepts it, else ValueError."""
    return check_image_name(name, "snapshot")


def _require(image: rbd.Image, pool: str, volume: str, name: str) -> None:
    if not image.snap_exists(name):
        raise StorageNotFound(f"snapshot {pool}/{volume}@{name} does not exist")


def describe_snapshots(pool: str, volume: str, image: rbd.Image) -> list[Snapshot]:
    """The snapshots of an image open as ``pool/volume``, oldest first.

    Reading a protected snapshot's clones moves the image to that snapshot and back.
    """
    result = []
    for snap in image.list_snaps():
        name = snap["name"]
        protected = image.is_protected_snap(name)
        result.append(
            Snapshot(
                pool=pool,
                volume=volume,
                name=name,
                id=int(snap["id"]),
                size=int(snap["size"]),
                protected=protected,
                created=image.get_snap_timestamp(snap["id"]).isoformat(),
                children=snapshot_children(image, name) if protected else [],
            )
        )
    return sorted(result, key=lambda s: s.id)


def list_snapshots(client: CephClient, pool: str, volume: str) -> list[Snapshot]:
    """The volume's snapshots, oldest first."""
    with open_image(client, pool, volume) as image:
        return describe_snapshots(pool, volume, image)


def get(client: CephClient, pool: str, volume: str, name: str) -> Snapshot:
    """One snapshot; StorageNotFound if it (or the volume or pool) does not exist."""
    for snap in list_snapshots(client, pool, volume):
        if snap.name == name:
            return snap
    raise StorageNotFound(f"snapshot {pool}/{volume}@{name} does not exist")


def create(client: CephClient, pool: str, volume: str, name: str) -> Snapshot:
    """Snapshot a volume (crash-consistent if it is in use); StorageExists if the name is taken."""
    check_name(name)
    with open_image(client, pool, volume, read_only=False) as image:
        if image.snap_exists(name):
            raise StorageExists(f"snapshot {pool}/{volume}@{name} already exists")
        image.create_snap(name)
    return get(client, pool, volume, name)


def remove(client: CephClient, pool: str, volume: str, name: str) -> None:
    """Remove a snapshot, unprotecting it first; StorageBusy if clones depend on it."""
    with open_image(client, pool, volume, read_only=False) as image:
        _require(image, pool, volume, name)
        drop_snapshot(pool, volume, image, name)


def rename(client: CephClient, pool: str, volume: str, name: str, new_name: str) -> None:
    """Rename a snapshot; StorageExists if ``new_name`` is taken."""
    check_name(new_name)
    with open_image(client, pool, volume, read_only=False) as image:
        _require(image, pool, volume, name)
        if image.snap_exists(new_name):
            raise StorageExists(f"snapshot {pool}/{volume}@{new_name} already exists")
        image.rename_snap(name, new_name)


def rollback(client: CephClient, pool: str, volume: str, name: str) -> None:
    """Return the volume's data to the snapshot; StorageBusy while a client has the volume open."""
    with open_image(client, pool, volume) as image:
        _require(image, pool, volume, name)
        users = len(list(image.watchers_list()))
    if users:
        raise StorageBusy(f"volume {pool}/{volume} is in use by {users} client(s); stop it before a rollback")
    with open_image(client, pool, volume, read_only=False) as image:
        image.rollback_to_snap(name)
