"""The file field of a ``multipart/form-data`` upload, read from the request as it arrives.

Werkzeug's form parser would copy every file part to a temporary file before the handler
runs; an upload is instead decoded here chunk by chunk and handed on as it arrives, never
more than :data:`READ_SIZE` bytes in memory and never more than the caller's ``limit``
bytes in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from pvc.api.errors import ApiError

#: Bytes read from the request at a time.
READ_SIZE = 1024 * 1024
#: Bytes a multipart body may have beyond its file's: boundaries, part headers, small fields.
MULTIPART_SLACK = 64 * 1024


def file_chunks(stream: BinaryIO, content_type: str | None, field: str, limit: int) -> Iterator[bytes]:
    """The bytes of the part named ``field`` in the multipart body read from ``stream``.

    ApiError 400 at once when the body is not ``multipart/form-data``; while iterating,
    ApiError 413 once the part passes ``limit`` bytes and 400 when the body ends without
    the part or in its middle. Reading stops at the end of the part.
    """
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary:
        raise ApiError(f"The image must be sent as a multipart/form-data field named '{field}'")
    return _chunks(stream, boundary.encode("latin-1"), field, limit)


def _chunks(stream: BinaryIO, boundary: bytes, field: str, limit: int) -> Iterator[bytes]:
    decoder = MultipartDecoder(boundary, max_form_memory_size=2 * READ_SIZE + MULTIPART_SLACK)
    in_file = False
    received = 0
    while True:
        try:
            event = decoder.next_event()
        except ValueError:  # the body ended in the middle of a part
            raise ApiError(f"The request body ended before the end of the '{field}' part") from None
        if isinstance(event, NeedData):
            decoder.receive_data(stream.read(READ_SIZE) or None)
        elif isinstance(event, File | Field):
            in_file = isinstance(event, File) and event.name == field
        elif isinstance(event, Data) and in_file:
            received += len(event.data)
            if received > limit:
                raise ApiError(f"The image is larger than the {limit} bytes it may have here", 413)
            if event.data:
                yield event.data
            if not event.more_data:
                return
        elif isinstance(event, Epilogue):
            raise ApiError(f"The image must be sent as a multipart/form-data field named '{field}'")


def all_parts(stream: BinaryIO, content_type: str | None, limit: int) -> list[bytes]:
    """Every part of a ``multipart/form-data`` body, in order, as bytes (a batch of extents).

    ApiError 400 when the body is not multipart or ends inside a part, 413 once the parts
    pass ``limit`` bytes in all.
    """
    mimetype, options = parse_options_header(content_type or "")
    boundary = options.get("boundary", "")
    if mimetype != "multipart/form-data" or not boundary:
        raise ApiError("The batch must be sent as multipart/form-data")
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=limit + MULTIPART_SLACK)
    parts: list[bytearray] = []
    received = 0
    while True:
        try:
            event = decoder.next_event()
        except ValueError:
            raise ApiError("The request body ended in the middle of a part") from None
        if isinstance(event, NeedData):
            decoder.receive_data(stream.read(READ_SIZE) or None)
        elif isinstance(event, File | Field):
            parts.append(bytearray())
        elif isinstance(event, Data) and parts:
            received += len(event.data)
            if received > limit:
                raise ApiError(f"The batch is larger than the {limit} bytes one may have", 413)
            parts[-1] += event.data
        elif isinstance(event, Epilogue):
            return [bytes(part) for part in parts]


def limit_stalls(environ: dict, seconds: float) -> None:
    """Make reads of the request's body give up (TimeoutError) once nothing arrives for
    ``seconds``: a sender that died mid-body must not hold the request (and what it locks)
    until TCP notices. Applies to the connection's socket under gunicorn or Werkzeug; the
    server resets it for the connection's next request."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is not None and hasattr(sock, "settimeout"):
        sock.settimeout(seconds)
