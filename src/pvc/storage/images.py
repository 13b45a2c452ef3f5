"""Opening RBD images, and the snapshot removal both volumes and snapshots need."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import rbd

from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageNotFound, translated

#: Volume and snapshot names PVC accepts: no '/' or '@' (they separate pool, image and snapshot).
IMAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+:-]{0,254}")


def check_image_name(name: str, kind: str = "volume") -> str:
    """``name`` if PVC accepts it as a volume or snapshot name, else ValueError."""
    if not isinstance(name, str) or not IMAGE_NAME.fullmatch(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use letters, digits and _ . + : - (not first), no / or @"
        )
    return name


@contextmanager
def open_image(
    client: CephClient, pool: str, name: str, *, read_only: bool = True, snapshot: str | None = None
) -> Iterator[rbd.Image]:
    """An open image for the block; librbd errors inside it become StorageErrors.

    A read-only open takes no lock and registers no watch, so it does not show up in
    :func:`watchers`; a read-write open registers one watch of its own.
    """
    with client.ioctx(pool) as ioctx:
        with translated(f"open volume {pool}/{name}"):
            try:
                image = rbd.Image(ioctx, name, snapshot=snapshot, read_only=read_only)
            except rbd.ImageNotFound as exc:
                what = f"snapshot {pool}/{name}@{snapshot}" if snapshot else f"volume {pool}/{name}"
                raise StorageNotFound(f"{what} does not exist") from exc
        try:
            with translated(f"volume {pool}/{name}"):
                yield image
        finally:
            image.close()


def snapshot_children(image: rbd.Image, snapshot: str) -> list[str]:
    """``pool/volume`` of every clone of ``snapshot`` of an open image."""
    image.set_snap(snapshot)
    try:
        return [f"{child['pool']}/{child['image']}" for child in image.list_children2()]
    finally:
        image.set_snap(None)


def drop_snapshot(pool: str, name: str, image: rbd.Image, snapshot: str) -> None:
    """Remove a snapshot of an image open read-write, unprotecting it first if it has no clones.

    StorageBusy if clones depend on it.
    """
    if image.is_protected_snap(snapshot):
        children = snapshot_children(image, snapshot)
        if children:
            raise StorageBusy(f"snapshot {pool}/{name}@{snapshot} has clones: {', '.join(children)}")
        image.unprotect_snap(snapshot)
    image.remove_snap(snapshot)
