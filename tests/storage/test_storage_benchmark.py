"""The storage benchmark on a real Ceph: figures for librbd and rbd bench, and no image left behind."""

from __future__ import annotations

import pytest

from pvc.storage import benchmark, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError
from pvc.storage.images import open_image
from pvc.storage.units import parse_size
from tests.storage.conftest import POOL

MIB = parse_size("1M")
#: small enough for a few seconds on the one-OSD test cluster
SMALL = {"rand_region": 16 * MIB, "seq_region": 64 * MIB, "rand_bytes": 4 * MIB, "seq_bytes": 32 * MIB}


def bench_images(client: CephClient) -> list[str]:
    return [name for name in volumes.names(client, POOL) if name.startswith("pvc-bench-")]


def test_benchmark_reports_both_sides(ceph_client: CephClient) -> None:
    steps: list[tuple[int, int, str]] = []
    result = benchmark.run(ceph_client, POOL, reads=True, progress=lambda *step: steps.append(step), **SMALL)
    report = result.to_dict()
    assert report["pool"] == POOL and report["elapsed_s"] > 0
    assert list(report["tests"]) == ["rand_write_4K", "seq_write_4M", "rand_read_4K", "seq_read_4M"]
    for name, test in report["tests"].items():
        for side in ("ours", "raw"):
            figures = test[side]
            assert figures["iops"] > 0 and figures["bandwidth_mib_s"] > 0 and figures["seconds"] > 0, name
        ours, raw = result.tests[name].ours, result.tests[name].raw
        # the same I/O on both sides
        assert ours.ops == raw.ops and ours.io_size == raw.io_size
        assert test["ratio"] == pytest.approx(ours.iops / raw.iops, abs=0.001) and test["ratio"] > 0
    assert result.tests["rand_write_4K"].ours.ops == 4 * MIB // 4096
    assert result.tests["seq_write_4M"].raw.ops == 32 * MIB // (4 * MIB)
    # progress: numbered steps up to the announced total: a warm-up, ours and rbd bench for each test
    assert [step for step, _total, _message in steps] == list(range(1, len(steps) + 1))
    assert {total for _step, total, _message in steps} == {len(steps)} and len(steps) == 2 + (1 + 2) * 4
    assert any("rand_read_4K: rbd bench" in message for _step, _total, message in steps)
    assert bench_images(ceph_client) == []


def test_benchmark_for_a_duration(ceph_client: CephClient) -> None:
    result = benchmark.run(ceph_client, POOL, duration=0.3, rounds=2, **SMALL)
    assert set(result.tests) == {"rand_write_4K", "seq_write_4M"}
    test = result.tests["rand_write_4K"]
    # our first run set the byte count that every later run of either side moved
    assert test.ours.ops == test.raw.ops > 0 and test.ours.ops % 2 == 0
    assert bench_images(ceph_client) == []


@pytest.mark.parametrize("fail_at", [1, 2, 4])
def test_images_removed_when_a_step_fails(ceph_client: CephClient, fail_at: int) -> None:
    def progress(step: int, total: int, message: str) -> None:
        if step == fail_at:
            raise RuntimeError(f"stop at step {step}: {message}")

    with pytest.raises(RuntimeError, match=f"stop at step {fail_at}"):
        benchmark.run(ceph_client, POOL, progress=progress, **SMALL)
    assert bench_images(ceph_client) == []


def test_images_removed_when_rbd_bench_fails(ceph_client: CephClient) -> None:
    with pytest.raises(StorageError, match="cannot run"):
        benchmark.run(ceph_client, POOL, rbd_tool="/nonexistent/rbd", **SMALL)
    with pytest.raises(StorageError, match=r"rbd bench .* failed"):
        benchmark.run(ceph_client, POOL, rbd_tool="false", **SMALL)
    assert bench_images(ceph_client) == []


def test_invalid_parameters(ceph_client: CephClient) -> None:
    for bad in (
        {"queue_depth": 0},
        {"rounds": 0},
        {"rand_region": 1000},
        {"seq_region": MIB},
        {"seq_region": 32 * MIB},
        {"duration": -1},
    ):
        with pytest.raises(ValueError):
            benchmark.run(ceph_client, POOL, **bad)
    with pytest.raises(ValueError, match="byte count"):
        benchmark.run(ceph_client, POOL, seq_bytes=MIB)
    assert bench_images(ceph_client) == []


def test_summary_line_parsing() -> None:
    out = "bench  type write ...\nelapsed: 1   ops: 16384   ops/sec: 9266.97   bytes/sec: 36 MiB/s\n"
    match = benchmark._SUMMARY.search(out)
    assert match is not None and (match[1], match[2]) == ("16384", "9266.97")
    assert benchmark._SUMMARY.search("elapsed: 0   ops: 64   ops/sec: 1.23457e+06   bytes/sec: 1.0 GiB/s")[
        2
    ] == ("1.23457e+06")


def test_test_images_run_without_librbd_cache(ceph_client: CephClient) -> None:
    """Both sides open the temporary images with the image's own settings: no cache, zero copy."""
    volumes.create(ceph_client, POOL, "bench-config", 4 * MIB)
    try:
        benchmark._configure(ceph_client, POOL, "bench-config")
        with open_image(ceph_client, POOL, "bench-config") as image:
            settings = {option["name"]: option["value"] for option in image.config_list()}
    finally:
        volumes.remove(ceph_client, POOL, "bench-config")
    assert benchmark.IMAGE_CONFIG == {"rbd_cache": "false", "rbd_disable_zero_copy_writes": "false"}
    for key, value in benchmark.IMAGE_CONFIG.items():
        assert settings[key] == value, key
