"""Pretty (human) views of the Ceph storage objects: OSDs, pools, volumes, snapshots and benchmarks."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from pvc.cli.output import details, table

NOT_AVAILABLE = "N/A"
BYTE_UNITS = ("K", "M", "G", "T", "P", "E")
BENCHMARK_RUNNING = "Running"


def _text(value: Any) -> str:
    return NOT_AVAILABLE if value is None or value == "" else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def human_bytes(value: Any) -> str:
    """A byte count as ``512B``/``4.0K``/``1.5G`` (powers of 1024); other values pass through."""
    if not _is_number(value):
        return _text(value)
    size, unit = float(value), "B"
    for next_unit in BYTE_UNITS:
        if abs(size) < 1024:
            break
        size, unit = size / 1024, next_unit
    return f"{int(value)}B" if unit == "B" else f"{size:.1f}{unit}"


def number(value: Any) -> str:
    """A figure with at most two decimals and no trailing zeros (``1234.5``, ``0.97``, ``12``)."""
    if not _is_number(value):
        return _text(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _percent(value: Any) -> str:
    return f"{number(value)}%" if _is_number(value) else _text(value)


def _flag_text(value: Any, good: str, bad: str) -> Text:
    """``1``/``0`` (or booleans) as a green ``good`` or red ``bad`` word."""
    if value is None or value == "":
        return Text(NOT_AVAILABLE)
    on = str(value).lower() in ("1", "true", "yes")
    return Text(good if on else bad, style="green" if on else "red")


def _osd_sort_key(osd: dict[str, Any]) -> tuple[int, str]:
    ident = str(osd.get("id", ""))
    return (int(ident), "") if ident.isdigit() else (1 << 30, ident)


def _rate(value: Any) -> Text:
    """Bytes per second, humanised."""
    return Text(f"{human_bytes(value)}/s") if _is_number(value) else _text(value)


def osd_list_pretty(osds: Any) -> RenderableType:
    """The ``storage osd list`` table."""
    rows = sorted(_dicts(osds), key=_osd_sort_key)
    if not rows:
        return Text("No OSDs.")
    view = table(
        "ID", "Node", "Up", "In", "Weight", "Reweight", "PGs", "Size", "Used", "Free", "Util", "Var",
        "Rd ops/s", "Rd/s", "Wr ops/s", "Wr/s", "Device", "DB Device",
    )  # fmt: skip
    for osd in rows:
        stats = _dict(osd.get("stats"))
        kb = stats.get("kb")
        view.add_row(
            _text(osd.get("id")),
            _text(osd.get("node") or stats.get("node")),
            _flag_text(stats.get("up"), "up", "down"),
            _flag_text(stats.get("in"), "in", "out"),
            number(stats.get("weight")),
            number(stats.get("reweight")),
            _text(stats.get("pgs")),
            human_bytes(kb * 1024) if _is_number(kb) else _text(kb),
            _text(stats.get("used")),
            _text(stats.get("avail")),
            _percent(stats.get("utilization")),
            number(stats.get("var")),
            _text(stats.get("rd_ops")),
            _rate(stats.get("rd_data")),
            _text(stats.get("wr_ops")),
            _rate(stats.get("wr_data")),
            _text(osd.get("device")),
            _text(osd.get("db_device")),
        )
    return view


def pool_list_pretty(pools: Any) -> RenderableType:
    """The ``storage pool list`` table."""
    rows = sorted(_dicts(pools), key=lambda pool: str(pool.get("name")))
    if not rows:
        return Text("No pools.")
    view = table(
        "Name", "ID", "Tier", "PGs", "Replication", "Volumes", "Stored", "Used", "Free", "Used%",
        "Objects", "Degraded", "Read ops", "Write ops",
    )  # fmt: skip
    for pool in rows:
        stats = _dict(pool.get("stats"))
        view.add_row(
            _text(pool.get("name")),
            _text(stats.get("id")),
            _text(pool.get("tier")),
            _text(pool.get("pgs")),
            _text(pool.get("replication")),
            _text(pool.get("volume_count")),
            human_bytes(stats.get("stored_bytes")),
            human_bytes(stats.get("used_bytes")),
            human_bytes(stats.get("free_bytes")),
            _percent(stats.get("used_percent")),
            _text(stats.get("num_objects")),
            _text(stats.get("num_objects_degraded")),
            _text(stats.get("read_ops")),
            _text(stats.get("write_ops")),
        )
    return view


def volume_list_pretty(volumes: Any) -> RenderableType:
    """The ``storage volume list`` table."""
    rows = sorted(_dicts(volumes), key=lambda vol: (str(vol.get("pool")), str(vol.get("name"))))
    if not rows:
        return Text("No volumes.")
    view = table("Name", "Pool", "Size", "Objects", "Object Size", "Snapshots", "Format", "Features")
    for volume in rows:
        stats = _dict(volume.get("stats"))
        features = stats.get("features")
        view.add_row(
            _text(volume.get("name")),
            _text(volume.get("pool")),
            _text(stats.get("size")),
            _text(stats.get("objects")),
            human_bytes(stats.get("object_size")),
            _text(stats.get("snapshot_count")),
            _text(stats.get("format")),
            ",".join(map(str, features)) if isinstance(features, list) and features else NOT_AVAILABLE,
        )
    return view


def snapshot_list_pretty(snapshots: Any) -> RenderableType:
    """The ``storage volume snapshot list`` table."""
    rows = sorted(
        _dicts(snapshots),
        key=lambda snap: (str(snap.get("pool")), str(snap.get("volume")), str(snap.get("snapshot"))),
    )
    if not rows:
        return Text("No snapshots.")
    view = table("Name", "Volume", "Pool", "Size", "Protected", "Created")
    for snap in rows:
        protected = snap.get("protected")
        view.add_row(
            _text(snap.get("snapshot")),
            _text(snap.get("volume")),
            _text(snap.get("pool")),
            _text(snap.get("size")),
            NOT_AVAILABLE if protected is None else ("Yes" if protected is True else "No"),
            _text(snap.get("created")),
        )
    return view


# Benchmarks.


def benchmark_tests(result: Any) -> dict[str, dict[str, Any]]:
    """The per-test figures of a finished job's ``benchmark_result`` (empty while it runs)."""
    tests = _dict(result).get("tests")
    return {str(name): _dict(figures) for name, figures in _dict(tests).items()}


def _is_running(job: dict[str, Any]) -> bool:
    return not isinstance(job.get("benchmark_result"), dict)


def _status(job: dict[str, Any]) -> str:
    result = job.get("benchmark_result")
    if isinstance(result, dict):
        return "Finished"
    return _text(result)


def benchmark_list_pretty(jobs: Any) -> RenderableType:
    """The ``storage benchmark list`` table: one row per job, IOPS and MiB/s of every test present."""
    rows = _dicts(jobs)
    if not rows:
        return Text("No benchmark jobs.")
    names: list[str] = []
    for job in rows:
        for name in benchmark_tests(job.get("benchmark_result")):
            if name not in names:
                names.append(name)
    headers = ["Job", "Status", "Pool", "Elapsed"]
    for name in names:
        headers += [f"{name} IOPS", f"{name} MiB/s"]
    view = table(*headers)
    for job in rows:
        result = _dict(job.get("benchmark_result"))
        tests = benchmark_tests(result)
        cells = [_text(job.get("job")), _status(job), _text(result.get("pool")), _seconds(result)]
        for name in names:
            ours = _dict(tests.get(name, {}).get("ours"))
            cells += [number(ours.get("iops")), number(ours.get("bandwidth_mib_s"))]
        view.add_row(*cells)
    return view


def _seconds(result: dict[str, Any]) -> str:
    elapsed = result.get("elapsed_s")
    return f"{number(elapsed)}s" if _is_number(elapsed) else _text(elapsed)


def benchmark_info_pretty(job: Any) -> RenderableType:
    """The ``storage benchmark info`` view: the job and, when finished, each test's figures."""
    item = _dict(job)
    result = _dict(item.get("benchmark_result"))
    summary = details(
        [
            ("Job", _text(item.get("job"))),
            ("Status", _status(item)),
            ("Pool", _text(result.get("pool"))),
            ("Elapsed", _seconds(result)),
            ("Test format", _text(item.get("test_format"))),
        ]
    )
    tests = benchmark_tests(result)
    if _is_running(item) or not tests:
        return summary
    view = table("Test", "IOPS", "MiB/s", "Seconds", "Raw IOPS", "Raw MiB/s", "Raw seconds", "Ratio")
    for name, figures in tests.items():
        ours, raw = _dict(figures.get("ours")), _dict(figures.get("raw"))
        view.add_row(
            name,
            number(ours.get("iops")),
            number(ours.get("bandwidth_mib_s")),
            number(ours.get("seconds")),
            number(raw.get("iops")),
            number(raw.get("bandwidth_mib_s")),
            number(raw.get("seconds")),
            number(figures.get("ratio")),
        )
    return Group(summary, Text(""), view)
