"""ApiClient without the CLI: headers, retries, failures, replies and streamed uploads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc import __version__
from pvc.client.connections import Connection
from pvc.client.errors import ApiError, ApiUnreachable
from pvc.client.http import ApiClient, ApiResponse, segment
from pvc.client.multipart import MultipartFileBody
from tests.cli.fakeapi import API_KEY, serve
from tests.cli.fakeapi_storage import FakeStorageApi, build_storage_app


@pytest.fixture
def fake_api() -> FakeStorageApi:
    """The fake API with its storage endpoints (not yet served)."""
    return FakeStorageApi()


@pytest.fixture
def connection(fake_api: FakeStorageApi) -> Iterator[Connection]:
    """A connection, with the right key, to the served fake API."""
    with serve(fake_api, build_storage_app) as port:
        yield Connection(name="test", host="127.0.0.1", port=port, api_key=API_KEY)


def _image(tmp_path: Path, size: int) -> Path:
    image = tmp_path / "disk image.qcow2"
    image.write_bytes(bytes((i * 7 + i // 256) % 256 for i in range(size)))
    return image


def test_headers_default_agent_and_another(connection: Connection, fake_api: FakeStorageApi) -> None:
    assert ApiClient(connection).get("/status").status == 200
    sent = fake_api.calls("GET", "/status")[0].headers
    assert sent["User-Agent"] == f"pvc-client-cli/{__version__}" and sent["X-Api-Key"] == API_KEY
    ApiClient(connection, user_agent="pvc-lab/9").get("/status")
    assert fake_api.calls("GET", "/status")[1].headers["User-Agent"] == "pvc-lab/9"


def test_params_booleans_lists_and_none(connection: Connection, fake_api: FakeStorageApi) -> None:
    ApiClient(connection).get("/node", params={"daemon_state": None, "flag": True, "limit": ("a", "b")})
    assert fake_api.calls("GET", "/node")[0].args == {"flag": ["true"], "limit": ["a", "b"]}


def test_get_retried_post_not(connection: Connection, fake_api: FakeStorageApi) -> None:
    client = ApiClient(connection)
    fake_api.fail_with = [503, 502]
    assert client.get("/node").status == 200
    assert len(fake_api.calls("GET", "/node")) == 3
    fake_api.fail_with = [503]
    assert client.post("/status", params={"state": "true"}).status == 503
    assert len(fake_api.calls("POST", "/status")) == 1 and fake_api.maintenance is False
    fake_api.fail_with = [503]
    once = ApiClient(connection, get_attempts=1)
    assert once.get("/node").status == 503
    assert len(fake_api.calls("GET", "/node")) == 4


def test_unreachable_is_one_line_and_logged_per_attempt() -> None:
    lines: list[str] = []
    client = ApiClient(Connection(name="down", host="127.0.0.1", port=1), debug_log=lines.append)
    with pytest.raises(ApiUnreachable) as failure:
        client.get("/node")
    reason = "Failed to connect to the API at http://127.0.0.1:1/api/v1: connection refused"
    assert str(failure.value) == reason
    assert sum("failed: connection refused" in line for line in lines) == 3


def test_debug_log_and_verify_override(connection: Connection) -> None:
    lines: list[str] = []
    client = ApiClient(connection, debug_log=lines.append)
    client.get("/node")
    assert lines[0] == f"API endpoint: GET {connection.base_url}/node"
    assert lines[1] == "Response code: 200" and lines[2].startswith("Response headers: ")
    assert client.verify is True
    assert ApiClient(connection, verify="/etc/ssl/ca.pem").verify == "/etc/ssl/ca.pem"


def test_replies_expect_and_messages(connection: Connection) -> None:
    client = ApiClient(connection)
    assert client.get("/node/hv1").expect_one("Node hv1")["name"] == "hv1"
    with pytest.raises(ApiError, match="Node ghost not found") as missing:
        client.get("/node/ghost").expect()
    assert missing.value.status == 404
    invalid = client.post("/status", params={"state": "maybe"})
    assert invalid.message == "state: A valid state must be specified"
    assert ApiResponse(502, None, "<html>Bad\n gateway</html>").message == (
        "API replied with HTTP 502: <html>Bad gateway</html>"
    )
    assert ApiResponse(204, None, "").message == "API replied with HTTP 204"
    assert segment("odd name/x") == "odd%20name%2Fx"


def test_upload_streams_a_file(connection: Connection, fake_api: FakeStorageApi, tmp_path: Path) -> None:
    image = _image(tmp_path, 300_000)
    read: list[int] = []
    reply = ApiClient(connection).upload(
        "/storage/ceph/volume/vms/vm1_disk0/upload",
        image,
        {"image_format": "qcow2", "file_size": 300_000},
        on_read=read.append,
    )
    assert reply.expect(200)["message"] == "Wrote uploaded file to volume vm1_disk0 in pool vms"
    [upload] = fake_api.uploads
    assert upload["data"] == image.read_bytes() and upload["filename"] == "disk image.qcow2"
    assert upload["args"] == {"image_format": ["qcow2"], "file_size": ["300000"]}
    assert int(upload["content_length"]) > 300_000 and upload["transfer_encoding"] is None
    assert sum(read) == 300_000


def test_multipart_body_reads_in_bounded_pieces(tmp_path: Path) -> None:
    image = _image(tmp_path, 10_000)
    seen: list[int] = []
    with MultipartFileBody(image, on_read=seen.append) as body:
        total = len(body)
        pieces = []
        while piece := body.read(777):
            assert len(piece) <= 777
            pieces.append(piece)
    data = b"".join(pieces)
    assert len(data) == total and sum(seen) == 10_000
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(f"--{body.boundary}\r\n".encode())
    assert b'name="file"; filename="disk image.qcow2"' in head
    assert rest == image.read_bytes() + f"\r\n--{body.boundary}--\r\n".encode()
    with MultipartFileBody(image) as again:
        assert b"".join(again) == data.replace(body.boundary.encode(), again.boundary.encode())
