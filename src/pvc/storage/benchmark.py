"""A storage benchmark: librbd I/O from PVC ("ours") beside Ceph's own ``rbd bench`` ("raw").

Each test (4K random writes, 4M sequential writes and optionally the same reads) runs over
a temporary RBD image in the pool under test, twice per round: once through librbd from
this process with asynchronous I/O at a queue depth (what PVC and its VMs' QEMU do), and
once by the ``rbd bench`` tool with the same I/O size, pattern, queue depth and byte
count. The ratio of the two shows how much of the storage's speed PVC's client side
reaches; the raw figures are the storage's own.

Fairness, as measured on the development machine (see bench/storage_benchmark.py): both
sides write into images that were filled once beforehand, so neither pays for allocating
RADOS objects; both flush before they start the clock (which also moves librbd's cache out
of write-through mode) and after the last write; and the two alternate which goes first
from round to round, so neither always runs on a cluster the other has just warmed up or
left busy. The temporary images are removed at the end, also when a step fails.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rados
import rbd

from pvc.storage import volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageError, StorageNotFound, StorageTimeout, translated
from pvc.storage.images import open_image

KIB = 1024
MIB = 1024**2

#: Progress callback: ``(step, total, message)``, called before each step; step counts from 1.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Test:
    """One benchmark test: I/O type (``write``/``read``), pattern (``rand``/``seq``) and size."""

    name: str
    io_type: str
    pattern: str
    io_size: int

    @property
    def random(self) -> bool:
        return self.pattern == "rand"

    @property
    def metric(self) -> str:
        """What the ratio compares: IOPS for small random I/O, bandwidth for large sequential I/O."""
        return "iops" if self.random else "bandwidth_mib_s"


RAND_WRITE_4K = Test("rand_write_4K", "write", "rand", 4 * KIB)
SEQ_WRITE_4M = Test("seq_write_4M", "write", "seq", 4 * MIB)
RAND_READ_4K = Test("rand_read_4K", "read", "rand", 4 * KIB)
SEQ_READ_4M = Test("seq_read_4M", "read", "seq", 4 * MIB)
WRITE_TESTS = (RAND_WRITE_4K, SEQ_WRITE_4M)
READ_TESTS = (RAND_READ_4K, SEQ_READ_4M)

#: Defaults sized for a small (one-OSD, few GiB free) cluster.
DEFAULT_QUEUE_DEPTH = 16
DEFAULT_RAND_REGION = 64 * MIB
DEFAULT_SEQ_REGION = 256 * MIB
#: Seconds one ``rbd bench`` run may take.
DEFAULT_TOOL_TIMEOUT = 600.0
#: Seconds to keep retrying the removal of an image a killed ``rbd bench`` still watches
#: (the OSD drops a dead client's watch after ``osd_client_watch_timeout``, 30 s).
REMOVE_RETRY = 45.0

_SUMMARY = re.compile(r"elapsed:\s*\d+\s+ops:\s*(\d+)\s+ops/sec:\s*([0-9.eE+-]+)")


@dataclass
class Figures:
    """What one side achieved in a test: operations of ``io_size`` bytes in ``seconds``."""

    ops: int
    io_size: int
    seconds: float

    @property
    def iops(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def bandwidth_mib_s(self) -> float:
        return self.iops * self.io_size / MIB

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.ops + other.ops, self.io_size, self.seconds + other.seconds)

    def to_dict(self) -> dict[str, float]:
        return {
            "iops": round(self.iops, 1),
            "bandwidth_mib_s": round(self.bandwidth_mib_s, 2),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class TestResult:
    """One test's figures for both sides, summed over the rounds."""

    test: Test
    ours: Figures
    raw: Figures

    @property
    def ratio(self) -> float:
        """ours / raw, on IOPS for the 4K tests and bandwidth for the 4M tests (the same thing here)."""
        raw = getattr(self.raw, self.test.metric)
        return getattr(self.ours, self.test.metric) / raw if raw > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"ours": self.ours.to_dict(), "raw": self.raw.to_dict(), "ratio": round(self.ratio, 3)}


@dataclass
class BenchmarkResult:
    """A benchmark run: the pool, its wall time and each test's result by name."""

    pool: str
    elapsed_s: float
    tests: dict[str, TestResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "elapsed_s": round(self.elapsed_s, 3),
            "tests": {name: result.to_dict() for name, result in self.tests.items()},
        }


def _check_positive(name: str, value: int | float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"invalid {name} {value!r}: must be positive")


def _check_region(name: str, region: int, io_size: int) -> None:
    _check_positive(name, region)
    if not isinstance(region, int) or region % io_size:
        raise ValueError(f"invalid {name} {region!r}: must be a multiple of {io_size} bytes")


def run(
    client: CephClient,
    pool: str,
    *,
    reads: bool = False,
    queue_depth: int = DEFAULT_QUEUE_DEPTH,
    rand_region: int = DEFAULT_RAND_REGION,
    seq_region: int = DEFAULT_SEQ_REGION,
    rand_bytes: int | None = None,
    seq_bytes: int | None = None,
    duration: float | None = None,
    rounds: int = 1,
    progress: Progress | None = None,
    rbd_tool: str = "rbd",
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
) -> BenchmarkResult:
    """Benchmark ``pool``: 4K random and 4M sequential writes (and with ``reads`` the same reads).

    The 4K tests work on an image of ``rand_region`` bytes, the 4M tests on one of
    ``seq_region`` bytes; both are created in ``pool`` (StorageError if it lacks the space),
    filled once, and removed at the end whatever happens. Each side moves ``rand_bytes`` /
    ``seq_bytes`` per round (default: the region once) or, with ``duration``, our side runs
    for that many seconds and ``rbd bench`` then moves the same number of bytes (it has no
    time limit of its own). ``rounds`` > 1 repeats every test with the order of the two
    sides swapped each time; figures are summed over the rounds. ``progress`` is called
    before each step; an exception it raises aborts the run (the images are still removed).
    """
    _check_positive("queue depth", queue_depth)
    _check_positive("rounds", rounds)
    _check_region("4K region", rand_region, RAND_WRITE_4K.io_size)
    _check_region("4M region", seq_region, SEQ_WRITE_4M.io_size)
    if duration is not None:
        _check_positive("duration", duration)
    totals = {"rand": rand_bytes or rand_region, "seq": seq_bytes or seq_region}
    for pattern, total in totals.items():
        _check_positive(f"{pattern} byte count", total)
    tests = WRITE_TESTS + (READ_TESTS if reads else ())
    steps = 2 + 2 * rounds * len(tests)
    step = 0

    def report(message: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, steps, message)

    started = time.monotonic()
    stem = f"pvc-bench-{uuid.uuid4().hex[:8]}"
    images = {"rand": (f"{stem}-4k", rand_region), "seq": (f"{stem}-4m", seq_region)}
    created: list[str] = []
    try:
        report(f"creating test images {stem}-4k/-4m in {pool}")
        for name, size in images.values():
            volumes.create(client, pool, name, size)
            created.append(name)
        report("filling the test images")
        for name, _size in images.values():
            _ours(client, pool, name, SEQ_WRITE_4M, queue_depth, None, None)
        result = BenchmarkResult(pool=pool, elapsed_s=0.0)
        for test in tests:
            image = images[test.pattern][0]
            # with a duration, our first run decides the byte count every later run moves
            total = None if duration is not None else totals[test.pattern] // test.io_size * test.io_size
            ours: Figures | None = None
            raw: Figures | None = None
            for round_no in range(rounds):
                label = f"{test.name} round {round_no + 1}/{rounds}" if rounds > 1 else test.name
                for side in ("ours", "raw") if round_no % 2 == 0 else ("raw", "ours"):
                    report(f"{label}: {'librbd' if side == 'ours' else 'rbd bench'}")
                    if side == "ours":
                        figures = _ours(client, pool, image, test, queue_depth, total, duration)
                        total = figures.ops * test.io_size
                        ours = figures if ours is None else ours + figures
                    else:
                        assert total is not None  # round 1 runs ours first
                        figures = _raw(client, pool, image, test, queue_depth, total, rbd_tool, tool_timeout)
                        raw = figures if raw is None else raw + figures
            assert ours is not None and raw is not None
            result.tests[test.name] = TestResult(test, ours, raw)
    except BaseException as exc:
        for problem in _remove_images(client, pool, created):
            exc.add_note(problem)
        raise
    problems = _remove_images(client, pool, created)
    if problems:
        raise StorageError("; ".join(problems))
    result.elapsed_s = time.monotonic() - started
    return result


def _ours(
    client: CephClient,
    pool: str,
    name: str,
    test: Test,
    queue_depth: int,
    total_bytes: int | None,
    duration: float | None,
) -> Figures:
    """Run ``test`` through librbd: ``total_bytes``, else for ``duration`` seconds, else the image once."""
    io_size = test.io_size
    write = test.io_type == "write"
    flags = (
        rados.LIBRADOS_OP_FLAG_FADVISE_RANDOM if test.random else rados.LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL
    )
    slots = threading.Semaphore(queue_depth)
    failures: list[int] = []

    def done(completion: rbd.Completion, *_data: bytes) -> None:
        result = completion.get_return_value()
        if result < 0:
            failures.append(-result)
        slots.release()

    # an operation that hangs fails after the client's op timeout, so waiting longer is a bug
    wait = 2 * client.timeout + 5
    with open_image(client, pool, name, read_only=False) as image:
        size = image.size()
        blocks = size // io_size
        ops_wanted = total_bytes // io_size if total_bytes is not None else blocks
        data = random.randbytes(io_size) if write else b""
        offsets = random.Random()
        image.flush()
        start = time.perf_counter()
        deadline = start + duration if duration is not None and total_bytes is None else None
        ops = 0
        cursor = 0
        while True:
            if deadline is None:
                if ops >= ops_wanted:
                    break
            elif ops and time.perf_counter() >= deadline:
                break
            if not slots.acquire(timeout=wait):
                raise StorageTimeout(f"librbd I/O on {pool}/{name} did not complete within {wait:.0f} s")
            if failures:
                slots.release()
                break
            if test.random:
                offset = offsets.randrange(blocks) * io_size
            else:
                offset = cursor * io_size
                cursor = cursor + 1 if cursor + 1 < blocks else 0
            try:
                if write:
                    image.aio_write(data, offset, done, flags)
                else:
                    image.aio_read(offset, io_size, done, flags)
            except BaseException:
                slots.release()
                raise
            ops += 1
        for _ in range(queue_depth):
            if not slots.acquire(timeout=wait):
                raise StorageTimeout(f"librbd I/O on {pool}/{name} did not complete within {wait:.0f} s")
        if write:
            image.flush()
        seconds = time.perf_counter() - start
    if failures:
        code = failures[0]
        raise StorageError(f"benchmark I/O on {pool}/{name} failed: errno {code}", code)
    return Figures(ops, io_size, seconds)


def _raw(
    client: CephClient,
    pool: str,
    name: str,
    test: Test,
    queue_depth: int,
    total_bytes: int,
    rbd_tool: str,
    timeout: float,
) -> Figures:
    """Run ``test`` with ``rbd bench`` and read its summary line."""
    argv = [
        rbd_tool,
        "bench",
        "--io-type",
        test.io_type,
        # full-seq: one sequential stream from offset 0, like ours (seq: one stream per thread)
        "--io-pattern",
        "rand" if test.random else "full-seq",
        "--io-size",
        str(test.io_size),
        "--io-threads",
        str(queue_depth),
        "--io-total",
        str(total_bytes),
        "-c",
        client.conffile,
    ]
    if client.name:
        argv += ["--name", client.name]
    with translated("read the client's keyring setting"):
        keyring = client.cluster.conf_get("keyring")
    if keyring:
        argv += ["--keyring", keyring]
    argv.append(f"{pool}/{name}")
    try:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StorageTimeout(f"rbd bench on {pool}/{name} did not finish within {timeout:.0f} s") from exc
    except OSError as exc:
        raise StorageError(f"cannot run {rbd_tool}: {exc}") from exc
    match = _SUMMARY.search(result.stdout)
    if result.returncode != 0 or match is None:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        raise StorageError(f"rbd bench on {pool}/{name} failed ({result.returncode}): {' | '.join(output)}")
    ops, per_second = int(match[1]), float(match[2])
    return Figures(ops, test.io_size, ops / per_second if per_second > 0 else 0.0)


def _remove_images(client: CephClient, pool: str, names: list[str]) -> list[str]:
    """Remove the test images; returns what could not be removed and why."""
    problems = []
    for name in names:
        deadline = time.monotonic() + REMOVE_RETRY
        while True:
            try:
                volumes.remove(client, pool, name)
                break
            except StorageNotFound:
                break
            except StorageBusy as exc:
                if time.monotonic() > deadline:
                    problems.append(f"benchmark image {pool}/{name} not removed: {exc}")
                    break
                time.sleep(1.0)
            except StorageError as exc:
                problems.append(f"benchmark image {pool}/{name} not removed: {exc}")
                break
    return problems
