"""``pvc storage volume``: Ceph RBD volumes (list, add, clone, resize, rename, remove, upload an image)
and ``pvc storage volume snapshot``: their snapshots.

``volume upload`` streams the image file as a ``multipart/form-data`` body with one field, ``file``,
read from disk block by block while it is sent (with a known Content-Length), so an image of any size
never sits in memory.
"""

from __future__ import annotations

import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import click
import requests
import urllib3
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from pvc.cli import http
from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliContext, CliError, options
from pvc.cli.http import ApiClient, ApiResponse, ApiUnreachable, describe_failure
from pvc.cli.output import emit_data, emit_lines
from pvc.cli.storage_pool import ceph_path, fetch_list, list_format_option
from pvc.cli.storage_views import snapshot_list_pretty, volume_list_pretty
from pvc.cli.vm_common import emit_reply

UPLOAD_FIELD = "file"
UPLOAD_BLOCK_SIZE = 1024 * 1024
PROGRESS_REFRESH = 0.2  # seconds between progress bar redraws

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


class MultipartFileBody:
    """A ``multipart/form-data`` body holding one file field, read from disk as it is consumed.

    Its length is known in advance (``len()``), so the request carries a Content-Length; ``read(n)``
    returns at most ``n`` bytes and iteration yields blocks of ``UPLOAD_BLOCK_SIZE``. ``on_read`` is
    called with the number of file bytes in each block read.
    """

    def __init__(
        self, path: Path, field: str = UPLOAD_FIELD, on_read: Callable[[int], None] | None = None
    ) -> None:
        self.boundary = uuid.uuid4().hex
        self.file_size = path.stat().st_size
        filename = path.name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")
        self._head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file: IO[bytes] = path.open("rb")
        self._on_read = on_read
        self._head_left = len(self._head)
        self._file_left = self.file_size
        self._tail_left = len(self._tail)

    @property
    def content_type(self) -> str:
        """The Content-Type header of the body, with its boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self.file_size + len(self._tail)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of the body (the rest of it for a negative or None size)."""
        want = len(self) if size is None or size < 0 else size
        chunks: list[bytes] = []
        if want and self._head_left:
            start = len(self._head) - self._head_left
            piece = self._head[start : start + want]
            self._head_left -= len(piece)
            want -= len(piece)
            chunks.append(piece)
        if want and self._file_left:
            piece = self._file.read(min(want, self._file_left))
            if not piece:
                raise CliError(f"{self._file.name} shrank while it was being uploaded")
            self._file_left -= len(piece)
            want -= len(piece)
            chunks.append(piece)
            if self._on_read is not None:
                self._on_read(len(piece))
        if want and self._tail_left and not self._file_left:
            start = len(self._tail) - self._tail_left
            piece = self._tail[start : start + want]
            self._tail_left -= len(piece)
            chunks.append(piece)
        return b"".join(chunks)

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(UPLOAD_BLOCK_SIZE):
            yield block

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> MultipartFileBody:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def post_stream(client: ApiClient, path: str, params: dict[str, Any], body: MultipartFileBody) -> ApiResponse:
    """POST ``body`` to ``path`` (query ``params``) once, the way :class:`ApiClient` sends calls."""
    url = client.url(path)
    headers = {**client.headers(), "Content-Type": body.content_type}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            reply = client.session.post(
                url,
                params=params,
                data=body,
                headers=headers,
                timeout=(http.CONNECT_TIMEOUT, http.READ_TIMEOUT),
                verify=client.verify,
            )
    except requests.exceptions.RequestException as exc:
        if client.debug_log is not None:
            client.debug_log(f"API endpoint: POST {url} failed: {describe_failure(exc)}")
        raise ApiUnreachable(
            f"Failed to connect to the API at {client.connection.base_url}: {describe_failure(exc)}"
        ) from exc
    if client.debug_log is not None:
        client.debug_log(f"API endpoint: POST {reply.url}")
        client.debug_log(f"Response code: {reply.status_code}")
        client.debug_log(f"Response headers: {dict(reply.headers)}")
    try:
        data = reply.json()
    except ValueError:
        data = None
    return ApiResponse(reply.status_code, data, reply.text)


def _upload_progress(cli: CliContext, label: str, total: int) -> tuple[Progress, Callable[[int], None]]:
    """A byte progress bar on stderr (hidden by ``-q``/``-s``) and the callback that advances it."""
    console = Console(file=sys.stderr, force_terminal=cli.colour or None, highlight=False)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        console=console,
        auto_refresh=False,
        disable=cli.quiet or cli.silent,
    )
    bar = progress.add_task(f"Uploading {label}", total=total)
    last = [0.0]

    def advance(count: int) -> None:
        progress.advance(bar, count)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_REFRESH or progress.tasks[0].completed >= total:
            last[0] = now
            progress.refresh()

    return progress, advance


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
    progress, advance = _upload_progress(cli, path.name, size)
    with progress, MultipartFileBody(path, on_read=advance) as body:
        params = {"image_format": image_format, "file_size": body.file_size}
        reply = post_stream(client, ceph_path("volume", pool, name, "upload"), params, body)
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
