"""A ``multipart/form-data`` request body that streams one file from disk.

The body holds one file field and is read block by block while it is sent, with its length known in
advance (so the request carries a Content-Length): a file of any size never sits in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from pvc.client.errors import ClientError

UPLOAD_FIELD = "file"
UPLOAD_BLOCK_SIZE = 1024 * 1024


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
                raise ClientError(f"{self._file.name} shrank while it was being uploaded")
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
