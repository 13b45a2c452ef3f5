"""Another cluster's PVC v1 API, as a snapshot send sees it: is it one, does the key work,
what VM does it have, and the receive calls."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3

from pvc.config.backup import BackupSection
from pvc.storage.digest import StreamCrc32
from pvc.storage.image_transfer import CHUNK, changed_extents
from pvc.storage.receive import EXTENT
from pvc.tasks import TaskError

#: Seconds to connect, and to wait for an answer (a whole image is written while it arrives).
TIMEOUT = (10.0, 600.0)
#: Reads of the image kept going ahead of the one being sent.
READ_AHEAD = 4
#: The most a destination's answer may have (a VM's detail with a large XML fits).
MAX_REPLY = 4 * 1024 * 1024


def check_uri(uri: object, error: type[Exception] = TaskError) -> str:
    """``uri`` without a trailing slash if it is an http(s) URL with a host, else ``error``."""
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise error(
            f"destination {uri!r} must be the http(s) URL of a PVC API, like https://host:7370/api/v1"
        )
    return str(uri).rstrip("/")


def check_allowed(uri: str, backup: BackupSection, error: type[Exception] = TaskError) -> None:
    """``error`` unless this cluster's configuration lets sends go to the API at ``uri``."""
    if not backup.allows_destination(uri):
        raise error(
            f"destination {uri} is not among this cluster's backup.send_destinations "
            "(nor an automirror destination): sends go only to the APIs configured there"
        )


class ImageReader:
    """An open RBD image as a request body: iterated in large chunks, with a length (so it
    is sent with Content-Length, not chunked), with the CRC-32 of what it handed out
    (``crc32``, once every chunk is out)."""

    def __init__(
        self, image: Any, size: int, progress: Callable[[int], None] | None = None, chunk: int = CHUNK
    ) -> None:
        self.image, self.size, self.chunk = image, size, chunk
        self.sent = 0
        self.crc32: str | None = None
        self.progress = progress

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        # librbd reads run without the GIL: keep READ_AHEAD of them going while one is sent
        offsets = iter(range(0, self.size, self.chunk))
        with (
            ThreadPoolExecutor(max_workers=READ_AHEAD, thread_name_prefix="send-read") as pool,
            StreamCrc32() as digest,
        ):
            window = deque(
                pool.submit(self._read, offset) for offset in itertools.islice(offsets, READ_AHEAD)
            )
            while window:
                data = window.popleft().result()
                for offset in itertools.islice(offsets, 1):
                    window.append(pool.submit(self._read, offset))
                digest.update(data)
                self.sent += len(data)
                if self.progress is not None:
                    self.progress(self.sent)
                yield data
            self.crc32 = digest.hexdigest()

    def _read(self, offset: int) -> bytes:
        return self.image.read(offset, min(self.chunk, self.size - offset))


@dataclass(frozen=True)
class Reply:
    """A destination's answer: its status and (bounded) body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class RemoteApi:
    """One destination: its base URL (``.../api/v1``), key and TLS check."""

    def __init__(self, uri: str, key: str, verify: bool = True) -> None:
        self.base = check_uri(uri)
        self.session = requests.Session()
        self.session.headers["X-Api-Key"] = key
        self.session.verify = verify

    def _call(self, method: str, path: str, **kwargs: Any) -> Reply:
        """One request; redirects are not followed and at most MAX_REPLY bytes of the reply
        are read (a destination is another cluster, not trusted to behave)."""
        failed = f"the destination {self.base} did not answer"
        try:
            reply = self.session.request(
                method, f"{self.base}{path}", timeout=TIMEOUT, allow_redirects=False, stream=True, **kwargs
            )
        except requests.RequestException as error:
            raise TaskError(f"{failed}: {type(error).__name__}") from None
        try:
            body = reply.raw.read(MAX_REPLY + 1, decode_content=True)
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise TaskError(f"{failed}: {type(error).__name__}") from None
        finally:
            reply.close()
        if len(body) > MAX_REPLY:
            raise TaskError(f"the destination {self.base} answered more than {MAX_REPLY} bytes")
        return Reply(reply.status_code, body)

    @staticmethod
    def _message(reply: Reply) -> str:
        body = reply.json()
        if body is None:
            return reply.body[:200].decode(errors="replace")
        return str(body.get("message", body))[:200] if isinstance(body, dict) else str(body)[:200]

    def _expect(self, reply: Reply, what: str) -> Any:
        if reply.status in (401, 403):
            raise TaskError(f"the destination refused the API key ({reply.status}) while {what}")
        if reply.status != 200:
            raise TaskError(f"the destination answered {reply.status} while {what}: {self._message(reply)}")
        body = reply.json()
        return {} if body is None else body

    def check(self) -> None:
        """TaskError unless the destination is a PVC API that takes the key."""
        root = self._call("GET", "/")
        body = root.json()
        message = body.get("message", "") if isinstance(body, dict) else ""
        if root.status != 200 or "PVC API" not in str(message):
            raise TaskError(f"{self.base} is not a PVC API")
        self._expect(self._call("GET", "/status"), "reading its status")

    def vm(self, name: str) -> dict | None:
        """The destination's VM ``name`` (v1 detail), None if it has none."""
        reply = self._call("GET", f"/vm/{quote(name, safe='')}")
        if reply.status == 404:
            return None
        found = self._expect(reply, f"looking up VM {name}")
        return found[0] if isinstance(found, list) and found else None

    def _block(self, vm: str) -> str:
        return f"/vm/{quote(vm, safe='')}/snapshot/receive/block"

    def send_image(self, vm: str, pool: str, volume: str, snapshot: str, reader: ImageReader) -> bool:
        """Stream a whole image. True once the destination confirmed, by the CRC-32 it answers,
        that it got exactly what was read; False if it answers none (a PVC API that does not
        check whole images, as earlier releases): the copy is then unverified. TaskError if the
        destination's CRC-32 differs."""
        params = {"pool": pool, "volume": volume, "snapshot": snapshot, "size": reader.size}
        headers = {"Content-Type": "application/octet-stream"}
        reply = self._call("POST", self._block(vm), params=params, data=reader, headers=headers)
        answer = self._expect(reply, f"receiving {pool}/{volume}")
        received = answer.get("crc32") if isinstance(answer, dict) else None
        if received is None:
            return False
        if received != reader.crc32:
            raise TaskError(f"the destination's copy of {pool}/{volume} does not match what was sent")
        return True

    def send_batch(
        self,
        vm: str,
        pool: str,
        volume: str,
        snapshot: str,
        source_snapshot: str,
        parts: list[bytes],
        send: str,
        index: int,
    ) -> None:
        """Send changed extents (each an offset/length header and its data) with their checksum,
        as batch ``index`` (0: the first) of the send called ``send``."""
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        params = {
            "pool": pool,
            "volume": volume,
            "snapshot": snapshot,
            "source_snapshot": source_snapshot,
            "checksum": digest.hexdigest(),
            "send": send,
            "batch": index,
        }
        files = {f"object_{index}": part for index, part in enumerate(parts)} or {"object_0": b""}
        self._expect(
            self._call("PUT", self._block(vm), params=params, files=files), f"receiving {pool}/{volume}"
        )

    def seal(self, vm: str, pool: str, volume: str, snapshot: str) -> None:
        params = {"pool": pool, "volume": volume, "snapshot": snapshot}
        self._expect(
            self._call("PATCH", self._block(vm), params=params), f"sealing {pool}/{volume}@{snapshot}"
        )

    def send_config(self, vm: str, snapshot: str, source_snapshot: str | None, detail: dict) -> str:
        params = {"snapshot": snapshot, **({"source_snapshot": source_snapshot} if source_snapshot else {})}
        path = f"/vm/{quote(vm, safe='')}/snapshot/receive/config"
        return self._message(self._call_expect("POST", path, params=params, json=detail))

    def set_state(self, vm: str, state: str) -> str:
        """Have the destination put VM ``vm`` in ``state``, forced (a mirror is taken over);
        its answer (it may still be starting the VM when its wait limit ends)."""
        data = {"state": state, "force": "true", "wait": "true"}
        reply = self._call("POST", f"/vm/{quote(vm, safe='')}/state", data=data)
        if reply.status != 202:
            self._expect(reply, f"setting VM {vm} to {state}")
        return self._message(reply)

    def remove_snapshot(self, vm: str, snapshot: str) -> None:
        """Have the destination remove snapshot ``snapshot`` of VM ``vm`` (a task there)."""
        path = f"/vm/{quote(vm, safe='')}/snapshot"
        reply = self._call("DELETE", path, params={"snapshot_name": snapshot})
        if reply.status != 202:
            self._expect(reply, f"removing snapshot {snapshot} of VM {vm}")

    def _call_expect(self, method: str, path: str, **kwargs: Any) -> Reply:
        reply = self._call(method, path, **kwargs)
        self._expect(reply, f"sending the configuration ({path})")
        return reply


def extent_batches(image, parent: str, limit: int = 32 * 1024 * 1024) -> Iterator[tuple[list[bytes], int]]:
    """Batches of ``offset/length`` headers and data of what changed in the open snapshot since
    ``parent`` (discarded extents are sent as zeros); each batch with its data bytes. There
    is always at least one batch (empty when nothing changed): it starts the snapshot there."""
    batch: list[bytes] = []
    size = 0
    started = False
    for offset, length, _exists in changed_extents(image, parent):
        for start in range(offset, offset + length, CHUNK):
            part = min(CHUNK, offset + length - start)
            batch.append(EXTENT.pack(start, part) + image.read(start, part))
            size += part
            if size >= limit:
                yield batch, size
                batch, size, started = [], 0, True
    if batch or not started:
        yield batch, size
