"""``pvc storage volume``: Ceph RBD volumes (list, add, clone, resize, rename, remove, upload an image)
and ``pvc storage volume snapshot``: their snapshots.

``volume upload`` streams the image file as a ``multipart/form-data`` body with one field, ``file``
(:meth:`pvc.client.http.ApiClient.upload`), so an image of any size never sits in memory; the command
shows a byte progress bar while it is sent.
"""

from __future__ import annotations

from pathlib import Path

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliError, options
from pvc.cli.output import emit_data, emit_lines
from pvc.cli.progress import upload_progress
from pvc.cli.storage_pool import ceph_path, fetch_list, list_format_option
from pvc.cli.storage_views import snapshot_list_pretty, volume_list_pretty
from pvc.cli.vm_common import emit_reply

force_option = click.option(
    "-f",
    "--force",
    "force_flag",
    is_flag=True,
    default=False,
    help="Go ahead even if the pool would be overprovisioned.",
)


@click.group(name="volume")
def storage_volume() -> None:
    """Manage Ceph RBD volumes."""


@storage_volume.command(name="add")
@click.argument("pool")
@click.argument("name")
@click.argument("size")
@force_option
def storage_volume_add(pool: str, name: str, size: str, force_flag: bool) -> None:
    """Add volume NAME of SIZE (bytes, or with a unit: 512M, 10G) to pool POOL."""
    cli = options()
    params = {"volume": name, "pool": pool, "size": size, "force": force_flag}
    emit_reply(cli, cli.client().post(ceph_path("volume"), params=params))


@storage_volume.command(name="clone")
@click.argument("pool")
@click.argument("name")
@click.argument("new_name")
@force_option
def storage_volume_clone(pool: str, name: str, new_name: str, force_flag: bool) -> None:
    """Copy volume NAME of pool POOL to a new volume NEW_NAME in the same pool."""
    cli = options()
    params = {"new_volume": new_name, "force": force_flag}
    emit_reply(cli, cli.client().post(ceph_path("volume", pool, name, "clone"), params=params))


@storage_volume.command(name="resize")
@click.argument("pool")
@click.argument("name")
@click.argument("size")
@force_option
@yes_option
def storage_volume_resize(pool: str, name: str, size: str, force_flag: bool, confirm_flag: bool) -> None:
    """Resize volume NAME of pool POOL to SIZE (bytes, or with a unit: 512M, 10G)."""
    cli = options()
    client = cli.client()
    confirm(f"Resize volume {pool}/{name} to {size}", confirm_flag)
    params = {"new_size": size, "force": force_flag}
    emit_reply(cli, client.put(ceph_path("volume", pool, name), params=params))


@storage_volume.command(name="rename")
@click.argument("pool")
@click.argument("name")
@click.argument("new_name")
@yes_option
def storage_volume_rename(pool: str, name: str, new_name: str, confirm_flag: bool) -> None:
    """Rename volume NAME of pool POOL to NEW_NAME."""
    cli = options()
    client = cli.client()
    confirm(f"Rename volume {pool}/{name} to {new_name}", confirm_flag)
    emit_reply(cli, client.put(ceph_path("volume", pool, name), params={"new_name": new_name}))


@storage_volume.command(name="remove")
@click.argument("pool")
@click.argument("name")
@yes_option
def storage_volume_remove(pool: str, name: str, confirm_flag: bool) -> None:
    """Remove volume NAME of pool POOL and destroy its data."""
    cli = options()
    client = cli.client()
    confirm(f"Remove volume {pool}/{name} and destroy all its data", confirm_flag)
    emit_reply(cli, client.delete(ceph_path("volume", pool, name)))


@storage_volume.command(name="list")
@click.argument("limit", required=False, default=None)
@click.option("-p", "--pool", "pool", default=None, help="Only volumes in this pool.")
@list_format_option
def storage_volume_list(limit: str | None, pool: str | None, output_format: str) -> None:
    """List volumes, optionally only those whose name matches LIMIT."""
    volumes = fetch_list("volume", {"limit": limit, "pool": pool})
    if output_format == "raw":
        emit_lines(volume.get("name") for volume in volumes)
        return
    emit_data(volumes, output_format, volume_list_pretty)


# Uploads.


@storage_volume.command(name="upload")
@click.argument("pool")
@click.argument("name")
@click.argument("image_file")
@click.option(
    "-f",
    "--format",
    "image_format",
    default="raw",
    show_default=True,
    help="Format of IMAGE_FILE (raw, vmdk, qcow2, qed, vdi, vpc); converted to raw on the volume.",
)
def storage_volume_upload(pool: str, name: str, image_file: str, image_format: str) -> None:
    """Write the disk image IMAGE_FILE to volume NAME of pool POOL (which must be big enough)."""
    path = Path(image_file)
    if not path.is_file():
        raise CliError(f"{image_file} is not a file")
    cli = options()
    client = cli.client()
    size = path.stat().st_size
    progress, advance = upload_progress(cli, path.name, size)
    with progress:
        params = {"image_format": image_format, "file_size": size}
        reply = client.upload(ceph_path("volume", pool, name, "upload"), path, params, on_read=advance)
    emit_reply(cli, reply)


# Snapshots.


@storage_volume.group(name="snapshot")
def storage_snapshot() -> None:
    """Manage snapshots of Ceph RBD volumes."""


def snapshot_path(pool: str, volume: str, name: str, *parts: str) -> str:
    """The API path of snapshot ``pool/volume@name``, or of one of its actions."""
    return ceph_path("snapshot", pool, volume, name, *parts)


@storage_snapshot.command(name="add")
@click.argument("pool")
@click.argument("volume")
@click.argument("name")
def storage_snapshot_add(pool: str, volume: str, name: str) -> None:
    """Take snapshot NAME of volume VOLUME in pool POOL."""
    cli = options()
    params = {"snapshot": name, "volume": volume, "pool": pool}
    emit_reply(cli, cli.client().post(ceph_path("snapshot"), params=params))


@storage_snapshot.command(name="rename")
@click.argument("pool")
@click.argument("volume")
@click.argument("name")
@click.argument("new_name")
def storage_snapshot_rename(pool: str, volume: str, name: str, new_name: str) -> None:
    """Rename snapshot NAME of volume VOLUME in pool POOL to NEW_NAME."""
    cli = options()
    reply = cli.client().put(snapshot_path(pool, volume, name), params={"new_name": new_name})
    emit_reply(cli, reply)


@storage_snapshot.command(name="remove")
@click.argument("pool")
@click.argument("volume")
@click.argument("name")
@yes_option
def storage_snapshot_remove(pool: str, volume: str, name: str, confirm_flag: bool) -> None:
    """Remove snapshot NAME of volume VOLUME in pool POOL."""
    cli = options()
    client = cli.client()
    confirm(f"Remove snapshot {name} of volume {pool}/{volume}", confirm_flag)
    emit_reply(cli, client.delete(snapshot_path(pool, volume, name)))


@storage_snapshot.command(name="rollback")
@click.argument("pool")
@click.argument("volume")
@click.argument("name")
@yes_option
def storage_snapshot_rollback(pool: str, volume: str, name: str, confirm_flag: bool) -> None:
    """Roll volume VOLUME in pool POOL back to snapshot NAME, losing all later changes."""
    cli = options()
    client = cli.client()
    confirm(
        f"Roll volume {pool}/{volume} back to snapshot {name}, discarding all later changes", confirm_flag
    )
    emit_reply(cli, client.post(snapshot_path(pool, volume, name, "rollback")))


@storage_snapshot.command(name="list")
@click.argument("limit", required=False, default=None)
@click.option("-p", "--pool", "pool", default=None, help="Only snapshots of volumes in this pool.")
@click.option("-o", "--volume", "volume", default=None, help="Only snapshots of volumes with this name.")
@list_format_option
def storage_snapshot_list(
    limit: str | None, pool: str | None, volume: str | None, output_format: str
) -> None:
    """List snapshots, optionally only those whose name matches LIMIT."""
    snapshots = fetch_list("snapshot", {"limit": limit, "pool": pool, "volume": volume})
    if output_format == "raw":
        emit_lines(snap.get("snapshot") for snap in snapshots)
        return
    emit_data(snapshots, output_format, snapshot_list_pretty)
