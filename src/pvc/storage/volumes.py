"""RBD volumes (images): list, create, resize, rename, copy, clone, remove, watchers and locks."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

import rbd

from pvc.storage import pools
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageError, StorageExists, StorageNotFound, translated
from pvc.storage.images import check_image_name, drop_snapshot, open_image
from pvc.storage.units import format_size

#: layering, exclusive-lock, object-map, fast-diff, deep-flatten (what ``rbd create`` uses)
DEFAULT_FEATURES = (
    rbd.RBD_FEATURE_LAYERING
    | rbd.RBD_FEATURE_EXCLUSIVE_LOCK
    | rbd.RBD_FEATURE_OBJECT_MAP
    | rbd.RBD_FEATURE_FAST_DIFF
    | rbd.RBD_FEATURE_DEEP_FLATTEN
)

_FEATURE_NAMES = {
    rbd.RBD_FEATURE_LAYERING: "layering",
    rbd.RBD_FEATURE_STRIPINGV2: "striping",
    rbd.RBD_FEATURE_EXCLUSIVE_LOCK: "exclusive-lock",
    rbd.RBD_FEATURE_OBJECT_MAP: "object-map",
    rbd.RBD_FEATURE_FAST_DIFF: "fast-diff",
    rbd.RBD_FEATURE_DEEP_FLATTEN: "deep-flatten",
    rbd.RBD_FEATURE_JOURNALING: "journaling",
    rbd.RBD_FEATURE_DATA_POOL: "data-pool",
    rbd.RBD_FEATURE_OPERATIONS: "operations",
    rbd.RBD_FEATURE_MIGRATING: "migrating",
    rbd.RBD_FEATURE_NON_PRIMARY: "non-primary",
}


@dataclass
class Volume:
    """An RBD image: size in bytes, features by name, parent snapshot of a clone."""

    pool: str
    name: str
    id: str
    size: int
    object_size: int
    objects: int
    features: list[str]
    snapshots: int
    parent: dict[str, str] | None
    created: str

    @property
    def size_human(self) -> str:
        """The size in PVC's notation (``"10G"``)."""
        return format_size(self.size, exact=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, with ``size_human`` beside ``size``."""
        data = asdict(self)
        data["size_human"] = self.size_human
        return data


@dataclass(frozen=True)
class Watcher:
    """A client that has the image open for writing (a running VM, a copy in progress ...)."""

    address: str
    client_id: int
    cookie: int


@dataclass(frozen=True)
class Lock:
    """An RBD lock: the exclusive lock of a writer, or an advisory lock."""

    locker: str
    cookie: str
    address: str
    tag: str
    exclusive: bool


def feature_names(mask: int) -> list[str]:
    """Names of the RBD features set in ``mask``."""
    return sorted(name for bit, name in _FEATURE_NAMES.items() if mask & bit)


def check_name(name: str) -> str:
    """The volume name if PVC accepts it, else ValueError."""
    return check_image_name(name, "volume")


def _parent(image: rbd.Image) -> dict[str, str] | None:
    try:
        spec = image.get_parent_image_spec()
    except rbd.ImageNotFound:
        return None
    return {"pool": spec["pool_name"], "volume": spec["image_name"], "snapshot": spec["snap_name"]}


def describe(pool: str, name: str, image: rbd.Image) -> Volume:
    """The :class:`Volume` of an image open as ``pool/name``."""
    stat = image.stat()
    return Volume(
        pool=pool,
        name=name,
        id=image.id(),
        size=int(stat["size"]),
        object_size=int(stat["obj_size"]),
        objects=int(stat["num_objs"]),
        features=feature_names(image.features()),
        snapshots=sum(1 for _ in image.list_snaps()),
        parent=_parent(image),
        created=image.create_timestamp().isoformat(),
    )


def info(client: CephClient, pool: str, name: str) -> Volume:
    """One volume; StorageNotFound if the pool or the volume does not exist."""
    with open_image(client, pool, name) as image:
        return describe(pool, name, image)


def names(client: CephClient, pool: str) -> list[str]:
    """Names of the volumes in a pool, sorted."""
    with client.ioctx(pool) as ioctx, translated(f"list volumes in {pool}"):
        return sorted(rbd.RBD().list(ioctx))


def exists(client: CephClient, pool: str, name: str) -> bool:
    """True if the volume exists (StorageNotFound if the pool does not)."""
    return name in names(client, pool)


def _check_space(client: CephClient, pool: str, size: int, what: str) -> None:
    free = pools.free_bytes(client, pool)
    if size > free:
        raise StorageError(
            f"cannot {what}: {format_size(size)} requested but pool {pool} has only {format_size(free)} free"
        )


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"invalid volume size {size!r}: must be a positive number of bytes")
    return size


def create(client: CephClient, pool: str, name: str, size: int, *, force: bool = False) -> Volume:
    """Create a volume of ``size`` bytes with the default features.

    StorageError if ``size`` exceeds the pool's free space (unless ``force``: thin
    over-provisioning); StorageExists if the name is taken.
    """
    check_name(name)
    _check_size(size)
    if not force:
        _check_space(client, pool, size, f"create volume {pool}/{name}")
    with client.ioctx(pool) as ioctx, translated(f"create volume {pool}/{name}"):
        try:
            rbd.RBD().create(ioctx, name, size, features=DEFAULT_FEATURES)
        except rbd.ImageExists as exc:
            raise StorageExists(f"volume {pool}/{name} already exists") from exc
    return info(client, pool, name)


def resize(
    client: CephClient, pool: str, name: str, size: int, *, force: bool = False, allow_shrink: bool = False
) -> Volume:
    """Grow (or with ``allow_shrink`` shrink) a volume to ``size`` bytes.

    Growth beyond the pool's free space is refused unless ``force``.
    """
    _check_size(size)
    with open_image(client, pool, name, read_only=False) as image:
        current = image.size()
        if size < current and not allow_shrink:
            raise StorageError(
                f"refusing to shrink volume {pool}/{name} from {format_size(current)} to {format_size(size)}"
            )
        if size > current and not force:
            _check_space(client, pool, size - current, f"grow volume {pool}/{name}")
        image.resize(size, allow_shrink=allow_shrink)
        return describe(pool, name, image)


def rename(client: CephClient, pool: str, name: str, new_name: str) -> None:
    """Rename a volume within its pool."""
    check_name(new_name)
    with client.ioctx(pool) as ioctx, translated(f"rename volume {pool}/{name}"):
        try:
            rbd.RBD().rename(ioctx, name, new_name)
        except rbd.ImageNotFound as exc:
            raise StorageNotFound(f"volume {pool}/{name} does not exist") from exc
        except rbd.ImageExists as exc:
            raise StorageExists(f"volume {pool}/{new_name} already exists") from exc


def clone(
    client: CephClient,
    pool: str,
    name: str,
    new_name: str,
    *,
    new_pool: str | None = None,
    force: bool = False,
) -> Volume:
    """Copy a volume into a new, independent volume (PVC's "volume clone").

    The data is copied (sparse areas stay sparse; snapshots are not copied), so the copy has
    no link to the source. The source should not be written meanwhile. StorageError if the
    target pool lacks the space (unless ``force``); a failed copy leaves no target behind.
    """
    target_pool = new_pool or pool
    check_name(new_name)
    with open_image(client, pool, name) as source:
        if exists(client, target_pool, new_name):
            raise StorageExists(f"volume {target_pool}/{new_name} already exists")
        if not force:
            _check_space(client, target_pool, source.size(), f"copy volume {pool}/{name}")
        with client.ioctx(target_pool) as target:
            try:
                source.copy(target, new_name, features=DEFAULT_FEATURES)
            except rbd.ImageExists as exc:
                raise StorageExists(f"volume {target_pool}/{new_name} already exists") from exc
            except BaseException:
                _remove_quietly(target, new_name)
                raise
    return info(client, target_pool, new_name)


def clone_from_snapshot(
    client: CephClient, pool: str, name: str, snapshot: str, new_name: str, *, new_pool: str | None = None
) -> Volume:
    """Create a copy-on-write clone of ``name@snapshot`` (protecting the snapshot if needed).

    The clone shares unchanged data with the snapshot, which then cannot be removed
    while the clone exists (flatten the clone first).
    """
    target_pool = new_pool or pool
    check_name(new_name)
    with open_image(client, pool, name, read_only=False) as image:
        if not image.snap_exists(snapshot):
            raise StorageNotFound(f"snapshot {pool}/{name}@{snapshot} does not exist")
        if not image.is_protected_snap(snapshot):
            image.protect_snap(snapshot)
    what = f"clone {pool}/{name}@{snapshot} to {target_pool}/{new_name}"
    with client.ioctx(pool) as parent, client.ioctx(target_pool) as child, translated(what):
        try:
            rbd.RBD().clone(parent, name, snapshot, child, new_name, features=DEFAULT_FEATURES)
        except rbd.ImageExists as exc:
            raise StorageExists(f"volume {target_pool}/{new_name} already exists") from exc
    return info(client, target_pool, new_name)


def flatten(client: CephClient, pool: str, name: str) -> None:
    """Copy a clone's shared data into it, detaching it from its parent snapshot."""
    with open_image(client, pool, name, read_only=False) as image:
        if _parent(image) is not None:
            image.flatten()


def watchers(client: CephClient, pool: str, name: str) -> list[Watcher]:
    """Clients that have the volume open (read-write)."""
    with open_image(client, pool, name) as image:
        return [
            Watcher(address=w["addr"], client_id=int(w["id"]), cookie=int(w["cookie"]))
            for w in image.watchers_list()
        ]


def locks(client: CephClient, pool: str, name: str) -> list[Lock]:
    """The locks held on the volume (a writer's exclusive lock shows as tag ``internal``)."""
    with open_image(client, pool, name) as image:
        held = image.list_lockers()
    if not held:
        return []
    return [
        Lock(
            locker=locker, cookie=cookie, address=address, tag=held["tag"], exclusive=bool(held["exclusive"])
        )
        for locker, cookie, address in held["lockers"]
    ]


def break_locks(client: CephClient, pool: str, name: str) -> int:
    """Break every lock on the volume (its holders are blocklisted); returns how many were broken.

    Only for a holder known to be dead (a fenced node): a live holder loses its access.
    """
    broken = 0
    with open_image(client, pool, name) as image:
        held = image.list_lockers()
        for locker, cookie, _address in held["lockers"] if held else []:
            try:
                image.break_lock(locker, cookie)
            except rbd.ImageNotFound:
                continue
            broken += 1
    return broken


def remove(client: CephClient, pool: str, name: str, *, with_snapshots: bool = False) -> None:
    """Delete a volume.

    StorageBusy if it is open by a client (a running VM), has snapshots (unless
    ``with_snapshots``: they are unprotected and removed first) or a snapshot has clones.
    """
    with open_image(client, pool, name) as image:
        users = len(list(image.watchers_list()))
        snaps = [snap["name"] for snap in image.list_snaps()]
    if users:
        raise StorageBusy(f"volume {pool}/{name} is in use by {users} client(s)")
    if snaps and not with_snapshots:
        raise StorageBusy(f"volume {pool}/{name} has snapshots: {', '.join(snaps)}")
    if snaps:
        with open_image(client, pool, name, read_only=False) as image:
            for snap in snaps:
                drop_snapshot(pool, name, image, snap)
    with client.ioctx(pool) as ioctx, translated(f"remove volume {pool}/{name}"):
        try:
            rbd.RBD().remove(ioctx, name)
        except rbd.ImageNotFound as exc:
            raise StorageNotFound(f"volume {pool}/{name} does not exist") from exc
        except rbd.ImageBusy as exc:
            raise StorageBusy(f"volume {pool}/{name} is in use") from exc


def _remove_quietly(ioctx: Any, name: str) -> None:
    with contextlib.suppress(rbd.Error):
        rbd.RBD().remove(ioctx, name)


def set_metadata(client: CephClient, pool: str, name: str, key: str, value: str) -> None:
    """Set the RBD image metadata ``key`` of a volume (a note travelling with the volume)."""
    with open_image(client, pool, name, read_only=False) as image, translated(f"tag volume {pool}/{name}"):
        image.metadata_set(key, value)


def get_metadata(client: CephClient, pool: str, name: str, key: str) -> str | None:
    """The RBD image metadata ``key`` of a volume; None when unset or the volume is gone."""
    try:
        with open_image(client, pool, name) as image:
            return image.metadata_get(key)
    except (StorageNotFound, KeyError):  # librbd raises KeyError for a key that is not set
        return None
