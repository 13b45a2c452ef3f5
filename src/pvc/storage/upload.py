"""Importing disk images into RBD volumes: ``qemu-img convert`` for any format, librbd for raw streams.

The volume must exist and be large enough; it is written in place, never resized. An upload
arriving over HTTP is either spooled to a local file first (:func:`spool`, then
:func:`import_image`, which handles every format) or, for raw data of a known length,
written straight into the volume as it arrives (:func:`write_raw`).

Images come from users, so the source is opened with its declared format only (no probing)
and refused if it refers to other files: a backing file, an external data file or VMDK
extents elsewhere would let an upload copy arbitrary host files into a volume.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rbd

from pvc import commands
from pvc.commands import CommandError, CommandResult
from pvc.storage import volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageError, tool_error, translated
from pvc.storage.images import open_image
from pvc.storage.units import format_size

#: Source formats accepted for import (qemu-img driver names).
FORMATS = ("raw", "qcow2", "vmdk", "qed", "vdi", "vpc")

#: Seconds ``qemu-img info`` may take on an uploaded image.
INFO_TIMEOUT = 60.0
#: Address space (bytes) ``qemu-img info`` may use when ``prlimit`` is available: a crafted
#: image can make the metadata parser allocate without bound.
INFO_MEMORY_LIMIT = 1024**3
#: Default seconds for a whole conversion.
CONVERT_TIMEOUT = 3600.0

#: :func:`write_raw` writes in blocks of this many bytes (the default RBD object size) ...
RAW_BLOCK = 4 * 1024**2
#: ... with up to this many writes in flight.
RAW_QUEUE_DEPTH = 8

_ZERO_BLOCK = bytes(RAW_BLOCK)


def check_format(image_format: str) -> str:
    """``image_format`` if it is one of :data:`FORMATS`, else ValueError listing them."""
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format {image_format!r}; valid formats: {', '.join(FORMATS)}")
    return image_format


def _escape(value: str) -> str:
    r"""A value for qemu's ``rbd:`` filename syntax, where ``\``, ``:``, ``@`` and ``/`` are special."""
    for char in ("\\", ":", "@", "/"):
        value = value.replace(char, "\\" + char)
    return value


def rbd_target(
    pool: str, volume: str, conf: str | Path, *, user: str | None = None, keyring: str | Path | None = None
) -> str:
    """QEMU's name for an RBD image: ``rbd:<pool>/<volume>:conf=<path>[:id=<user>][:keyring=<path>]``.

    ``user`` is the cephx user with or without its ``client.`` prefix.
    """
    target = f"rbd:{_escape(pool)}/{_escape(volume)}:conf={_escape(str(conf))}"
    if user:
        target += f":id={_escape(user.removeprefix('client.'))}"
    if keyring:
        target += f":keyring={_escape(str(keyring))}"
    return target


def _client_target(client: CephClient, pool: str, volume: str) -> str:
    """The ``rbd:`` target for QEMU, with the client's conf, user and effective keyring."""
    with translated("read the client's keyring setting"):
        keyring = client.cluster.conf_get("keyring") or None
    return rbd_target(pool, volume, client.conffile, user=client.name, keyring=keyring)


def _run(argv: list[str], timeout: float, what: str) -> CommandResult[str]:
    """Run qemu-img for ``what``; any exit status is returned, the caller judges it."""
    try:
        return commands.run(argv, timeout=timeout, accept=None)
    except CommandError as exc:
        raise tool_error(
            exc,
            timed_out=f"{what} did not finish within {timeout:.0f} s",
            cannot_run=f"cannot run {argv[0]} to {what}: {exc.reason}",
        ) from exc


def _stderr(result: CommandResult[str]) -> str:
    return commands.output_tail(result.stderr, result.stdout, 5) or f"exit status {result.returncode}"


def image_info(source: Path, image_format: str, *, timeout: float = INFO_TIMEOUT) -> dict[str, Any]:
    """``qemu-img info`` of ``source`` read as ``image_format``; ValueError if it is not such an image."""
    check_format(image_format)
    argv = ["qemu-img", "info", "--output=json", "-f", image_format, str(source)]
    prlimit = shutil.which("prlimit")
    if prlimit:
        argv = [prlimit, f"--as={INFO_MEMORY_LIMIT}", f"--cpu={max(1, round(timeout))}", "--", *argv]
    result = _run(argv, timeout, f"inspect {source.name}")
    if result.returncode != 0:
        raise ValueError(f"{source.name} is not a valid {image_format} image: {_stderr(result)}")
    try:
        info = json.loads(result.stdout)
        int(info["virtual-size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"unexpected qemu-img info output for {source.name}: {exc}") from exc
    return info


def _check_self_contained(source: Path, info: dict[str, Any]) -> None:
    """ValueError if the image refers to any file but itself."""
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise ValueError(f"{source.name} has a backing file; upload a self-contained image")
    specific = info.get("format-specific", {}).get("data", {})
    if specific.get("data-file"):
        raise ValueError(f"{source.name} has an external data file; upload a self-contained image")
    itself = os.path.realpath(source)
    for extent in specific.get("extents", []):
        name = str(extent.get("filename", ""))
        if os.path.realpath(os.path.join(source.parent, name)) != itself:
            raise ValueError(f"{source.name} refers to the extent file {name}; upload a self-contained image")


def _writable_volume(client: CephClient, pool: str, volume: str) -> int:
    """The size of a volume no client has open; StorageNotFound / StorageBusy otherwise."""
    size = volumes.info(client, pool, volume).size
    users = volumes.watchers(client, pool, volume)
    if users:
        raise StorageBusy(f"volume {pool}/{volume} is in use by {len(users)} client(s)")
    return size


def _check_fits(pool: str, volume: str, data_size: int, volume_size: int, what: str) -> None:
    if data_size > volume_size:
        raise ValueError(
            f"{what} ({format_size(data_size)}) is larger than volume {pool}/{volume} "
            f"({format_size(volume_size)})"
        )


def import_image(
    client: CephClient,
    pool: str,
    volume: str,
    source: str | Path,
    image_format: str,
    *,
    timeout: float = CONVERT_TIMEOUT,
) -> None:
    """Write the disk image ``source`` (in ``image_format``) into the existing volume ``pool/volume``.

    The image is converted to raw by ``qemu-img convert`` into the volume from offset 0;
    the rest of the volume is left as it was. ValueError for an unknown format, a file
    that is not a valid image of that format, an image referring to other files, or one
    whose virtual size exceeds the volume (nothing is written then); StorageNotFound if
    the volume does not exist, StorageBusy if a client has it open, StorageError with
    qemu-img's message if the conversion fails, StorageTimeout after ``timeout`` seconds.
    """
    check_format(image_format)
    source = Path(source).absolute()
    if not source.is_file():
        raise FileNotFoundError(f"no image file {source}")
    volume_size = _writable_volume(client, pool, volume)
    info = image_info(source, image_format)
    _check_self_contained(source, info)
    _check_fits(pool, volume, int(info["virtual-size"]), volume_size, f"image {source.name}")
    argv = [
        "qemu-img",
        "convert",
        "-n",  # the target exists
        "-f",
        image_format,
        "-O",
        "raw",
        str(source),
        _client_target(client, pool, volume),
    ]
    result = _run(argv, timeout, f"import {source.name} into {pool}/{volume}")
    if result.returncode != 0:
        message = _stderr(result)
        if "Unknown protocol 'rbd'" in message:
            message = f"qemu-img has no rbd driver (Debian package qemu-block-extra): {message}"
        raise StorageError(f"importing {source.name} into {pool}/{volume} failed: {message}")


def spool(chunks: Iterable[bytes], directory: str | Path, *, limit: int | None = None) -> Path:
    """Write an upload (an iterable of byte chunks) to a new temporary file in ``directory``.

    Returns the file's path; the caller removes it when done. If reading the chunks or
    writing fails, or more than ``limit`` bytes arrive (ValueError), the partial file is
    removed before the error propagates.
    """
    handle, name = tempfile.mkstemp(prefix=".pvc-upload-", suffix=".img", dir=directory)
    path = Path(name)
    try:
        written = 0
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                written += len(chunk)
                if limit is not None and written > limit:
                    raise ValueError(f"upload is larger than the limit of {format_size(limit)}")
                file.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _is_zero(block: bytes) -> bool:
    return block == _ZERO_BLOCK if len(block) == RAW_BLOCK else block == bytes(len(block))


class _InFlight:
    """Bounds the asynchronous librbd writes in flight and keeps the first error."""

    def __init__(self, depth: int) -> None:
        self._slots = threading.Semaphore(depth)
        self._depth = depth
        self.error: int | None = None

    def acquire(self) -> None:
        self._slots.acquire()

    def done(self, completion: rbd.Completion) -> None:
        result = completion.get_return_value()
        if result < 0 and self.error is None:
            self.error = -result
        self._slots.release()

    def release(self) -> None:
        """Give back a slot whose write was never submitted."""
        self._slots.release()

    def drain(self) -> None:
        for _ in range(self._depth):
            self._slots.acquire()
        for _ in range(self._depth):
            self._slots.release()


def write_raw(client: CephClient, pool: str, volume: str, chunks: Iterable[bytes], total_size: int) -> int:
    """Write ``total_size`` bytes of raw disk data arriving as ``chunks`` into ``pool/volume``, from offset 0.

    Data goes straight into the image through librbd, block by block, several writes in
    flight; all-zero blocks are written as zeroes (deallocated, so the volume stays
    sparse). Returns the bytes written. ValueError before anything is written if
    ``total_size`` exceeds the volume; ValueError once the chunks turn out longer or shorter
    than ``total_size`` (what arrived until then has been written). StorageNotFound if the
    volume does not exist, StorageBusy if a client has it open.
    """
    if isinstance(total_size, bool) or not isinstance(total_size, int) or total_size < 0:
        raise ValueError(f"invalid upload size {total_size!r}")
    volume_size = _writable_volume(client, pool, volume)
    _check_fits(pool, volume, total_size, volume_size, "upload")
    in_flight = _InFlight(RAW_QUEUE_DEPTH)
    written = 0
    pending = bytearray()

    def submit(image: rbd.Image, block: bytes) -> None:
        nonlocal written
        in_flight.acquire()
        try:
            if _is_zero(block):
                image.aio_write_zeroes(written, len(block), in_flight.done)
            else:
                image.aio_write(block, written, in_flight.done)
        except BaseException:
            in_flight.release()
            raise
        written += len(block)

    with open_image(client, pool, volume, read_only=False) as image:
        try:
            received = 0
            for chunk in chunks:
                received += len(chunk)
                if received > total_size:
                    raise ValueError(
                        f"upload is longer than the declared {total_size} bytes; "
                        f"the first {written} bytes were written to {pool}/{volume}"
                    )
                if not pending and len(chunk) == RAW_BLOCK and type(chunk) is bytes:
                    submit(image, chunk)  # a whole block as it came: no copy
                else:
                    pending += chunk
                while len(pending) >= RAW_BLOCK:
                    submit(image, bytes(memoryview(pending)[:RAW_BLOCK]))
                    del pending[:RAW_BLOCK]
                if in_flight.error is not None:
                    break
            if pending and in_flight.error is None:
                submit(image, bytes(pending))
        finally:
            in_flight.drain()
        if in_flight.error is not None:
            code = in_flight.error
            raise StorageError(f"writing to volume {pool}/{volume}: {os.strerror(code)}", code)
        image.flush()
    if written < total_size:
        raise ValueError(
            f"upload ended after {written} of {total_size} bytes; what arrived was written to {pool}/{volume}"
        )
    return written
