"""A storage benchmark: librbd I/O from PVC ("ours") beside Ceph's own ``rbd bench`` ("raw").

Each test (4K random writes, 4M sequential writes and optionally the same reads) runs over
a temporary RBD image in the pool under test, twice per round: once through librbd from
this process with asynchronous I/O at a queue depth (what PVC and its VMs' QEMU do), and
once by the ``rbd bench`` tool with the same I/O size, pattern, queue depth and byte
count. The ratio of the two shows how much of the storage's speed PVC's client side
reaches; the raw figures are the storage's own.

Fairness, as measured on the development machine (see bench/storage_benchmark.py): both
sides write into images that were filled once beforehand, so neither pays for allocating
RADOS objects; both flush before they start the clock and after the last write; each test
starts with an untimed warm-up run, and the two sides alternate which goes first from
round to round, so neither always runs on a cluster the other (or the previous test) has
just left busy with deferred writes or compaction. Both sides run with librbd's cache
off, as PVC's VMs do (their RBD disks use QEMU's ``cache=none``), set on the temporary
images themselves so that ``rbd bench`` opens them the same way; with the cache off
librbd also takes our write buffers without copying them, as ``rbd bench`` (C++ buffers)
always does. The temporary images are removed at the end, also when a step fails.
"""

from __future__ import annotations

import ctypes
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rados
import rbd

from pvc import commands
from pvc.commands import CommandError
from pvc.storage import volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import (
    StorageBusy,
    StorageError,
    StorageNotFound,
    StorageTimeout,
    tool_error,
    translated,
)
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

#: librbd settings of the temporary images (image-level config, stored as ``conf_*`` metadata):
#: no cache, as with PVC's VM disks; our buffers stay ours until their write completes, so
#: librbd may use them in place
IMAGE_CONFIG = {"rbd_cache": "false", "rbd_disable_zero_copy_writes": "false"}

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
    if seq_region < queue_depth * SEQ_WRITE_4M.io_size:
        # rbd bench's full-seq starts I/O number i at i * 4M, for each of the queue_depth slots
        raise ValueError(f"invalid 4M region {seq_region}: must hold queue depth ({queue_depth}) times 4M")
    if duration is not None:
        _check_positive("duration", duration)
    totals = {
        "rand": rand_region if rand_bytes is None else rand_bytes,
        "seq": seq_region if seq_bytes is None else seq_bytes,
    }
    for test in WRITE_TESTS:
        total = totals[test.pattern]
        if isinstance(total, bool) or not isinstance(total, int) or total < test.io_size:
            raise ValueError(f"invalid {test.name} byte count {total!r}: at least {test.io_size} bytes")
    tests = WRITE_TESTS + (READ_TESTS if reads else ())
    steps = 2 + (1 + 2 * rounds) * len(tests)
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
            _configure(client, pool, name)
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
            # untimed: whichever side went first would otherwise also pay for what the
            # previous test left the OSDs to do (deferred writes, compaction)
            report(f"{test.name}: warm-up")
            _ours(client, pool, image, test, queue_depth, total, duration)
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


def _configure(client: CephClient, pool: str, name: str) -> None:
    """Give a temporary image the benchmark's librbd settings (:data:`IMAGE_CONFIG`)."""
    with open_image(client, pool, name, read_only=False) as image, translated(f"configure {pool}/{name}"):
        for key, value in IMAGE_CONFIG.items():
            image.metadata_set(f"conf_{key}", value)


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
    with open_image(client, pool, name, read_only=False) as image:
        blocks = image.size() // test.io_size
        loop = _Loop(image, test, blocks, total_bytes // test.io_size if total_bytes is not None else blocks)
        image.flush()
        start = time.perf_counter()
        if duration is not None and total_bytes is None:
            loop.deadline = start + duration
        # an operation that hangs fails after the client's op timeout: waiting longer is a bug
        loop.run(queue_depth, stall=2 * client.timeout + 5)
        if test.io_type == "write":
            image.flush()
        seconds = time.perf_counter() - start
    if loop.failure is not None:
        raise StorageError(f"benchmark I/O on {pool}/{name} failed: {loop.failure}", loop.errno)
    return Figures(loop.completed, test.io_size, seconds)


class _Loop:
    """Keeps ``queue_depth`` asynchronous I/Os in flight on an open image.

    Every completion submits the next I/O from librbd's callback thread, so the thread that
    started the loop only waits; librbd queues new requests without blocking the caller
    (``rbd_non_blocking_aio``, on by default). Measured against the same loop fed from the
    starting thread this saves ~10 us of CPU per I/O, spent handing Python's GIL back and
    forth between two threads.
    """

    def __init__(self, image: rbd.Image, test: Test, blocks: int, ops_wanted: int) -> None:
        self.image = image
        self.write = test.io_type == "write"
        self.io_size = test.io_size
        self.random = test.random
        self.flags = (
            rados.LIBRADOS_OP_FLAG_FADVISE_RANDOM
            if test.random
            else rados.LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL
        )
        self.data = random.randbytes(test.io_size) if self.write else b""
        self.blocks = blocks
        self.ops_wanted = ops_wanted
        #: with a deadline (perf_counter seconds) the loop stops issuing then, not after ops_wanted
        self.deadline: float | None = None
        self.offsets = random.Random()
        self.cursor = 0
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.issued = 0
        self.in_flight = 0
        self.completed = 0
        self.failure: str | None = None
        self.errno: int | None = None

    def _wanted(self) -> bool:
        """Whether to issue another I/O (called with the lock held)."""
        if self.failure is not None:
            return False
        if self.deadline is not None:
            return self.issued == 0 or time.perf_counter() < self.deadline
        return self.issued < self.ops_wanted

    def _claim(self) -> int | None:
        """The offset of the next I/O, counted as in flight; None when no more are wanted."""
        if not self._wanted():
            return None
        self.issued += 1
        self.in_flight += 1
        if self.random:
            return self.offsets.randrange(self.blocks) * self.io_size
        offset = self.cursor * self.io_size
        self.cursor = self.cursor + 1 if self.cursor + 1 < self.blocks else 0
        return offset

    def _submit(self, offset: int) -> None:
        try:
            if self.write:
                self.image.aio_write(self.data, offset, self._done, self.flags)
            else:
                self.image.aio_read(offset, self.io_size, self._done, self.flags)
        except BaseException as exc:
            with self.lock:
                self._fail(f"submitting I/O: {exc}", None)
                self._retire()
            raise

    def _fail(self, message: str, code: int | None) -> None:
        if self.failure is None:
            self.failure, self.errno = message, code

    def _retire(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.finished.set()

    def _done(self, completion: rbd.Completion, *_data: bytes) -> None:
        try:
            _keep_thread_state()
            result = completion.get_return_value()
            with self.lock:
                self.completed += 1
                if result < 0:
                    self._fail(f"errno {-result}", -result)
                offset = self._claim()  # before _retire, so in_flight only reaches 0 at the end
                self._retire()
            if offset is not None:
                self._submit(offset)
        except BaseException as exc:  # raised in a librbd thread: nobody else would see it
            with self.lock:
                self._fail(f"completion handler: {exc!r}", None)

    def run(self, queue_depth: int, stall: float) -> None:
        """Run until done; StorageTimeout if no I/O completes for ``stall`` seconds."""
        with self.lock:
            offsets = [offset for offset in (self._claim() for _ in range(queue_depth)) if offset is not None]
        try:
            for offset in offsets:
                self._submit(offset)
            seen = -1
            while not self.finished.wait(stall):
                if self.completed == seen:
                    raise StorageTimeout(f"librbd I/O made no progress for {stall:.0f} s")
                seen = self.completed
        except BaseException:
            with self.lock:  # completions still to come submit nothing more
                self._fail("aborted", None)
            raise


#: librbd threads that have been given a Python thread state for good
_PINNED_THREADS: set[int] = set()


def _keep_thread_state() -> None:
    """Give the calling librbd thread a Python thread state that outlives the callback.

    A completion callback enters Python from a thread librbd started; the binding then has
    CPython create a thread state for the call and destroy it afterwards
    (``PyGILState_Ensure``/``Release``), including an mmap/munmap of a fresh frame stack:
    ~15 us of CPU per I/O, a quarter of all the CPU a 4K read costs on the development
    machine. One more ``PyGILState_Ensure``, never released, keeps the thread state for the
    thread's lifetime (a few KiB per librbd thread).
    """
    ident = threading.get_ident()
    if ident not in _PINNED_THREADS:
        _PINNED_THREADS.add(ident)
        ctypes.pythonapi.PyGILState_Ensure()


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
        result = commands.run(argv, timeout=timeout, accept=None)
    except CommandError as exc:
        raise tool_error(
            exc, timed_out=f"rbd bench on {pool}/{name} did not finish within {timeout:.0f} s"
        ) from exc
    match = _SUMMARY.search(result.stdout)
    if result.returncode != 0 or match is None:
        output = commands.output_tail(result.stderr, result.stdout, 3)
        raise StorageError(f"rbd bench on {pool}/{name} failed ({result.returncode}): {output}")
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
