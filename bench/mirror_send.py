"""Snapshot send: bytes on the wire for an incremental, and full-send throughput against
``rbd export | rbd import``, on a small real Ceph.

Starts its own Ceph (own directory and ports, one file-backed OSD) with a source pool and
a destination pool, and a receiver in a process of its own (as the destination's API is):
the real receive path (:mod:`pvc.storage.receive`, the API's multipart reader) behind a
local HTTP server, counting the request bytes that arrive. The sender is the send task's
own code (:mod:`pvc.cluster.vm.remote_api`), in this process; ``rbd export`` and ``rbd
import`` are two processes too.

1. A ``--size`` volume (1 GiB) filled with data, snapshot ``s1``, sent whole: time and
   throughput, then ``rbd export src/vol@s1 - | rbd import - dst/copy`` timed on the same
   Ceph, ``--repeat`` (3) times: each ratio and their median are printed (target ≥ 0.8).
2. ``--change`` (16 MiB) of it rewritten, snapshot ``s2``, sent as changes since ``s1``: the
   bytes that crossed the wire are printed (target ≤ 24 MiB), and the copy checked equal.

Run: .venv/bin/python -m bench.mirror_send [--size 1G] [--change 16M] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from pvc.api.uploads import all_parts
from pvc.cluster.vm.remote_api import ImageReader, RemoteApi, extent_batches
from pvc.lab import standalone_ceph
from pvc.storage import pools, receive, volumes
from pvc.storage import snapshots as rbd_snapshots
from pvc.storage.client import CephClient
from pvc.storage.images import open_image
from pvc.storage.units import parse_size

#: apart from the lab's, the storage tests' and the other benches' ports
PORTS = standalone_ceph.Ports(mon_v2=13910, mon_v1=16399, bind_min=19200, bind_max=19400)
SOURCE, DESTINATION = "src", "dst"
COUNT_PATH = "/bench/count"
MIB = 1024 * 1024


class Receiver:
    """The receive endpoints over the real storage path, counting request bytes."""

    def __init__(self, client: CephClient) -> None:
        self.client = client
        self.wire_bytes = 0

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == COUNT_PATH:  # the bench's own: read (GET) or reset (DELETE) the count
            count = self.wire_bytes
            if request.method == "DELETE":
                self.wire_bytes = 0
            return Response(json.dumps({"wire_bytes": count}), mimetype="application/json")(
                environ, start_response
            )
        counted = _Counting(request.stream)
        args = request.args
        pool, volume, snapshot = args.get("pool"), args.get("volume"), args.get("snapshot")
        body: dict = {"message": "ok"}
        if request.method == "POST":
            body["crc32"] = receive.receive_image(
                self.client, "bench", pool, volume, snapshot, int(args["size"]), counted
            )
        elif request.method == "PUT":
            parts = all_parts(counted, request.content_type, 256 * MIB)
            receive.receive_extents(
                self.client,
                "bench",
                pool,
                volume,
                snapshot,
                args["source_snapshot"],
                parts,
                args.get("checksum"),
                args.get("send", ""),
                int(args["batch"]) if "batch" in args else None,
            )
        elif request.method == "PATCH":
            receive.seal(self.client, "bench", pool, volume, snapshot)
        self.wire_bytes += counted.count + sum(len(f"{k}: {v}\r\n") for k, v in request.headers.items())
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)


class _Counting:
    def __init__(self, stream) -> None:
        self.stream, self.count = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def fill(client: CephClient, name: str, size: int) -> None:
    block = bytes(range(256)) * (4 * MIB // 256)
    with open_image(client, SOURCE, name, read_only=False) as image:
        for offset in range(0, size, len(block)):
            image.write(block, offset)


def sha(client: CephClient, pool: str, name: str, snapshot: str | None = None) -> str:
    digest = hashlib.sha256()
    with open_image(client, pool, name, snapshot=snapshot) as image:
        for offset in range(0, image.size(), 4 * MIB):
            digest.update(image.read(offset, min(4 * MIB, image.size() - offset)))
    return digest.hexdigest()


def wire_bytes(url: str, reset: bool = False) -> int:
    """The receiver's count of request bytes (and set it to 0 with ``reset``)."""
    method = "DELETE" if reset else "GET"
    with urllib.request.urlopen(urllib.request.Request(url + COUNT_PATH, method=method)) as reply:
        return json.load(reply)["wire_bytes"]


def serve(conf: str) -> None:
    """The receiver process: serve the receive path on a loopback port, printed on stdout."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    with CephClient(Path(conf), timeout=30) as client:
        server = make_server("127.0.0.1", 0, Receiver(client), threaded=True)
        print(server.server_port, flush=True)
        server.serve_forever()


def full_send(client: CephClient, remote: RemoteApi, size: int) -> float:
    """Seconds to send ``src/vol@s1`` whole to ``dst/vol`` and seal it, as the send task does."""
    started = time.monotonic()
    with open_image(client, SOURCE, "vol", snapshot="s1") as image:
        remote.send_image("bench", DESTINATION, "vol", "s1", ImageReader(image, size))
    remote.seal("bench", DESTINATION, "vol", "s1")
    return time.monotonic() - started


def export_import(conf: Path) -> float:
    """Seconds for ``rbd export src/vol@s1 - | rbd import - dst/copy``."""
    started = time.monotonic()
    export = subprocess.Popen(
        ["rbd", "-c", str(conf), "export", f"{SOURCE}/vol@s1", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(
        ["rbd", "-c", str(conf), "import", "-", f"{DESTINATION}/copy"],
        stdin=export.stdout,
        check=True,
        capture_output=True,
    )
    export.wait()
    return time.monotonic() - started


def run(client: CephClient, conf: Path, url: str, size: int, change: int, repeat: int) -> None:
    remote = RemoteApi(url, "unused")
    volumes.create(client, SOURCE, "vol", size)
    fill(client, "vol", size)
    rbd_snapshots.create(client, SOURCE, "vol", "s1")

    ratios = []
    for attempt in range(1, repeat + 1):
        if attempt > 1:  # the copies of the attempt before go
            volumes.remove(client, DESTINATION, "vol", with_snapshots=True)
            volumes.remove(client, DESTINATION, "copy")
        ours, theirs = full_send(client, remote, size), export_import(conf)
        ratios.append(theirs / ours)
        print(
            f"full send of {size // MIB} MiB ({attempt}/{repeat}): "
            f"{ours:.1f} s ({size / MIB / ours:.0f} MiB/s); "
            f"rbd export | rbd import: {theirs:.1f} s ({size / MIB / theirs:.0f} MiB/s); "
            f"ratio {theirs / ours:.2f}",
            flush=True,
        )
    print(f"full send: median ratio {statistics.median(ratios):.2f} (target >= 0.8)", flush=True)

    block = bytes(reversed(range(256))) * (change // 256)
    with open_image(client, SOURCE, "vol", read_only=False) as image:
        image.write(block, size // 3)
    rbd_snapshots.create(client, SOURCE, "vol", "s2")
    wire_bytes(url, reset=True)
    data = 0
    with open_image(client, SOURCE, "vol", snapshot="s2") as image:
        for index, (batch, amount) in enumerate(extent_batches(image, "s1")):
            remote.send_batch("bench", DESTINATION, "vol", "s2", "s1", batch, "bench-send", index)
            data += amount
    remote.seal("bench", DESTINATION, "vol", "s2")
    same = sha(client, DESTINATION, "vol", "s2") == sha(client, SOURCE, "vol", "s2")
    print(
        f"incremental send after changing {change // MIB} MiB of {size // MIB} MiB: "
        f"{data / MIB:.1f} MiB of data, "
        f"{wire_bytes(url) / MIB:.1f} MiB on the wire (target <= {change * 1.5 / MIB:.0f} MiB); "
        f"copy identical: {same}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G")
    parser.add_argument("--change", default="16M")
    parser.add_argument("--repeat", type=int, default=3, help="full sends (and rbd pipes) timed")
    parser.add_argument("--serve", metavar="CEPH_CONF", help=argparse.SUPPRESS)  # the receiver process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    size, change = parse_size(args.size), parse_size(args.change)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "ceph"
        lab = standalone_ceph.start(directory, 1, ports=PORTS, pool=SOURCE, pool_pgs=32, die_with_parent=True)
        try:
            with lab.client(timeout=30) as client:
                pools.create(client, DESTINATION, 32, "copies=1,mincopies=1")
                receiver = subprocess.Popen(
                    [sys.executable, "-m", "bench.mirror_send", "--serve", str(lab.conf_path)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                try:
                    port = int(receiver.stdout.readline())
                    run(client, lab.conf_path, f"http://127.0.0.1:{port}", size, change, args.repeat)
                finally:
                    receiver.terminate()
                    receiver.wait(10)
        finally:
            lab.stop(grace=0)
            shutil.rmtree(directory / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
