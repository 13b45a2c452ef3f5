"""Pretty (human) views of the Ceph storage objects: OSDs, pools, volumes, snapshots and benchmarks."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from pvc.cli.output import NOT_AVAILABLE, as_dict, details, dicts, human_bytes, is_number, table, text_or_na


def number(value: Any) -> str:
    """A figure with at most two decimals and no trailing zeros (``1234.5``, ``0.97``, ``12``)."""
    if not is_number(value):
        return text_or_na(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _percent(value: Any) -> str:
    return f"{number(value)}%" if is_number(value) else text_or_na(value)


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
    return Text(f"{human_bytes(value)}/s") if is_number(value) else text_or_na(value)


def osd_list_pretty(osds: Any) -> RenderableType:
    """The ``storage osd list`` table."""
    rows = sorted(dicts(osds), key=_osd_sort_key)
    if not rows:
        return Text("No OSDs.")
    view = table(
        "ID", "Node", "Up", "In", "Weight", "Reweight", "PGs", "Size", "Used", "Free", "Util", "Var",
        "Rd ops/s", "Rd/s", "Wr ops/s", "Wr/s", "Device", "DB Device",
    )  # fmt: skip
    for osd in rows:
        stats = as_dict(osd.get("stats"))
        kb = stats.get("kb")
        view.add_row(
            text_or_na(osd.get("id")),
            text_or_na(osd.get("node") or stats.get("node")),
            _flag_text(stats.get("up"), "up", "down"),
            _flag_text(stats.get("in"), "in", "out"),
            number(stats.get("weight")),
            number(stats.get("reweight")),
            text_or_na(stats.get("pgs")),
            human_bytes(kb * 1024) if is_number(kb) else text_or_na(kb),
            text_or_na(stats.get("used")),
            text_or_na(stats.get("avail")),
            _percent(stats.get("utilization")),
            number(stats.get("var")),
            text_or_na(stats.get("rd_ops")),
            _rate(stats.get("rd_data")),
            text_or_na(stats.get("wr_ops")),
            _rate(stats.get("wr_data")),
            text_or_na(osd.get("device")),
            text_or_na(osd.get("db_device")),
        )
    return view


def pool_list_pretty(pools: Any) -> RenderableType:
    """The ``storage pool list`` table."""
    rows = sorted(dicts(pools), key=lambda pool: str(pool.get("name")))
    if not rows:
        return Text("No pools.")
    view = table(
        "Name", "ID", "Tier", "PGs", "Replication", "Volumes", "Stored", "Used", "Free", "Used%",
        "Objects", "Degraded", "Read ops", "Write ops",
    )  # fmt: skip
    for pool in rows:
        stats = as_dict(pool.get("stats"))
        view.add_row(
            text_or_na(pool.get("name")),
            text_or_na(stats.get("id")),
            text_or_na(pool.get("tier")),
            text_or_na(pool.get("pgs")),
            text_or_na(pool.get("replication")),
            text_or_na(pool.get("volume_count")),
            human_bytes(stats.get("stored_bytes")),
            human_bytes(stats.get("used_bytes")),
            human_bytes(stats.get("free_bytes")),
            _percent(stats.get("used_percent")),
            text_or_na(stats.get("num_objects")),
            text_or_na(stats.get("num_objects_degraded")),
            text_or_na(stats.get("read_ops")),
            text_or_na(stats.get("write_ops")),
        )
    return view


def volume_list_pretty(volumes: Any) -> RenderableType:
    """The ``storage volume list`` table."""
    rows = sorted(dicts(volumes), key=lambda vol: (str(vol.get("pool")), str(vol.get("name"))))
    if not rows:
        return Text("No volumes.")
    view = table("Name", "Pool", "Size", "Objects", "Object Size", "Snapshots", "Format", "Features")
    for volume in rows:
        stats = as_dict(volume.get("stats"))
        features = stats.get("features")
        view.add_row(
            text_or_na(volume.get("name")),
            text_or_na(volume.get("pool")),
            text_or_na(stats.get("size")),
            text_or_na(stats.get("objects")),
            human_bytes(stats.get("object_size")),
            text_or_na(stats.get("snapshot_count")),
            text_or_na(stats.get("format")),
            ",".join(map(str, features)) if isinstance(features, list) and features else NOT_AVAILABLE,
        )
    return view


def snapshot_list_pretty(snapshots: Any) -> RenderableType:
    """The ``storage volume snapshot list`` table."""
    rows = sorted(
        dicts(snapshots),
        key=lambda snap: (str(snap.get("pool")), str(snap.get("volume")), str(snap.get("snapshot"))),
    )
    if not rows:
        return Text("No snapshots.")
    view = table("Name", "Volume", "Pool", "Size", "Protected", "Created")
    for snap in rows:
        protected = snap.get("protected")
        view.add_row(
            text_or_na(snap.get("snapshot")),
            text_or_na(snap.get("volume")),
            text_or_na(snap.get("pool")),
            text_or_na(snap.get("size")),
            NOT_AVAILABLE if protected is None else ("Yes" if protected is True else "No"),
            text_or_na(snap.get("created")),
        )
    return view


# Benchmarks.


def benchmark_tests(result: Any) -> dict[str, dict[str, Any]]:
    """The per-test figures of a finished job's ``benchmark_result`` (empty while it runs)."""
    tests = as_dict(result).get("tests")
    return {str(name): as_dict(figures) for name, figures in as_dict(tests).items()}


def _is_running(job: dict[str, Any]) -> bool:
    return not isinstance(job.get("benchmark_result"), dict)


def _status(job: dict[str, Any]) -> str:
    result = job.get("benchmark_result")
    if isinstance(result, dict):
        return "Finished"
    return text_or_na(result)


def benchmark_list_pretty(jobs: Any) -> RenderableType:
    """The ``storage benchmark list`` table: one row per job, IOPS and MiB/s of every test present."""
    rows = dicts(jobs)
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
        result = as_dict(job.get("benchmark_result"))
        tests = benchmark_tests(result)
        cells = [text_or_na(job.get("job")), _status(job), text_or_na(result.get("pool")), _seconds(result)]
        for name in names:
            ours = as_dict(tests.get(name, {}).get("ours"))
            cells += [number(ours.get("iops")), number(ours.get("bandwidth_mib_s"))]
        view.add_row(*cells)
    return view


def _seconds(result: dict[str, Any]) -> str:
    elapsed = result.get("elapsed_s")
    return f"{number(elapsed)}s" if is_number(elapsed) else text_or_na(elapsed)


def benchmark_info_pretty(job: Any) -> RenderableType:
    """The ``storage benchmark info`` view: the job and, when finished, each test's figures."""
    item = as_dict(job)
    result = as_dict(item.get("benchmark_result"))
    summary = details(
        [
            ("Job", text_or_na(item.get("job"))),
            ("Status", _status(item)),
            ("Pool", text_or_na(result.get("pool"))),
            ("Elapsed", _seconds(result)),
            ("Test format", text_or_na(item.get("test_format"))),
        ]
    )
    tests = benchmark_tests(result)
    if _is_running(item) or not tests:
        return summary
    view = table("Test", "IOPS", "MiB/s", "Seconds", "Raw IOPS", "Raw MiB/s", "Raw seconds", "Ratio")
    for name, figures in tests.items():
        ours, raw = as_dict(figures.get("ours")), as_dict(figures.get("raw"))
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
