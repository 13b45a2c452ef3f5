"""The sender's check of a whole image against the CRC-32 the destination answers, with a
small HTTP server on loopback standing in for the destination's receive endpoint."""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pvc.cluster.vm.remote_api import ImageReader, RemoteApi
from pvc.tasks import TaskError

DATA = os.urandom(3 * 1024 * 1024 + 17)


class FakeImage:
    """What ImageReader reads: ``read(offset, length)`` of an RBD image."""

    def read(self, offset: int, length: int) -> bytes:
        return DATA[offset : offset + length]


class Receiver(BaseHTTPRequestHandler):
    """Reads the body whole and answers with the CRC-32 the test asks for (``mode``)."""

    mode = "right"
    received = b""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received = body
        answer: dict = {"message": "received"}
        if self.mode == "right":
            answer["crc32"] = f"{zlib.crc32(body):08x}"
        elif self.mode == "wrong":
            answer["crc32"] = f"{zlib.crc32(body) ^ 1:08x}"
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def destination() -> Iterator[RemoteApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RemoteApi(f"http://127.0.0.1:{server.server_address[1]}/api/v1", "key")
    finally:
        server.shutdown()
        server.server_close()


def send(remote: RemoteApi, mode: str) -> bool:
    Receiver.mode, Receiver.received = mode, b""
    reader = ImageReader(FakeImage(), len(DATA), chunk=1024 * 1024)
    verified = remote.send_image("vm1", "vms", "disk0", "snap1", reader)
    assert Receiver.received == DATA
    assert reader.crc32 == f"{zlib.crc32(DATA):08x}"
    return verified


def test_a_destination_that_answers_the_image_crc32_confirms_the_copy(destination: RemoteApi) -> None:
    assert send(destination, "right") is True


def test_a_destination_whose_crc32_differs_fails_the_send(destination: RemoteApi) -> None:
    with pytest.raises(TaskError, match="does not match what was sent"):
        send(destination, "wrong")


def test_a_destination_that_checks_no_images_leaves_the_copy_unverified(destination: RemoteApi) -> None:
    assert send(destination, "none") is False
