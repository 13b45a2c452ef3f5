"""Reading an upload's file part from a multipart body as it arrives, within a bound."""

from __future__ import annotations

import io

import pytest

from pvc.api.errors import ApiError
from pvc.api.uploads import READ_SIZE, file_chunks

BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def body(*parts: tuple[str, bytes, bool], end: bool = True) -> bytes:
    """A multipart body of (name, data, is_file) parts."""
    out = b""
    for name, data, is_file in parts:
        filename = '; filename="f.img"' if is_file else ""
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n\r\n'.encode()
        out += data + b"\r\n"
    return out + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


class Tracked(io.BytesIO):
    """A stream that records how far it has been read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.high = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.high = self.tell()
        return data


def test_the_file_part_streams_through_without_being_read_ahead():
    image = bytes(range(256)) * (12 * 1024)  # 3 MiB
    stream = Tracked(body(("note", b"hello", False), ("file", image, True), ("after", b"x" * 10, False)))
    chunks = file_chunks(stream, CONTENT_TYPE, "file", len(image))
    first = next(chunks)
    assert image.startswith(first) and stream.high <= 2 * READ_SIZE  # not read in full
    assert first + b"".join(chunks) == image


def test_a_file_over_the_limit_is_413_before_the_body_is_read():
    image = b"\x01" * (4 * READ_SIZE)
    stream = Tracked(body(("file", image, True)))
    with pytest.raises(ApiError) as refused:
        for _ in file_chunks(stream, CONTENT_TYPE, "file", READ_SIZE):
            pass
    assert refused.value.status == 413 and f"{READ_SIZE} bytes" in refused.value.message
    assert stream.high <= 2 * READ_SIZE


@pytest.mark.parametrize(
    ("content_type", "data", "words"),
    [
        (None, b"", "multipart/form-data field named 'file'"),
        ("application/x-www-form-urlencoded", b"file=x", "multipart/form-data field named 'file'"),
        (CONTENT_TYPE, body(("other", b"x", True)), "multipart/form-data field named 'file'"),
        (CONTENT_TYPE, body(("file", b"x" * 100, True), end=False)[:-20], "ended before the end"),
    ],
)
def test_a_body_without_the_file_part_is_400(content_type, data, words):
    with pytest.raises(ApiError, match=words) as refused:
        list(file_chunks(io.BytesIO(data), content_type, "file", 1024))
    assert refused.value.status == 400
