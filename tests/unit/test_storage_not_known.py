"""A storage figure Ceph has not reported yet is not known (None, shown as "N/A"), never 0.

The Ceph client is faked at its command boundary with the answers a real cluster gives
just after a pool or OSD is created, before the manager's statistics include it.
"""

from __future__ import annotations

from typing import Any

from pvc.cluster.figures import NOT_KNOWN
from pvc.cluster.storage import queries
from pvc.state.osd_devices import OsdDevice
from pvc.storage import osds, pools


class NewbornCeph:
    """Pool ``old`` (id 1) has statistics; pool ``new`` (id 2) and osd.1 do not yet."""

    def mon_command(self, prefix: str, **_: Any) -> Any:
        pool = {"size": 1, "min_size": 1, "pg_num": 8, "pg_placement_num": 8, "crush_rule": 0}
        answers = {
            "osd pool ls": [
                {**pool, "pool_name": "old", "pool_id": 1},
                {**pool, "pool_name": "new", "pool_id": 2},
            ],
            "osd crush rule dump": [{"rule_id": 0, "rule_name": "replicated_rule", "steps": []}],
            "df": {"pools": [{"name": "old", "id": 1, "stats": {"objects": 3, "stored": 10, "wr": 4}}]},
            "osd dump": {"osds": [{"osd": 0, "up": 1, "in": 1}, {"osd": 1, "up": 0, "in": 1}]},
            "osd tree": {"nodes": [{"id": 0, "crush_weight": 1.0}, {"id": 1, "crush_weight": 1.0}]},
        }
        return answers[prefix]

    def mgr_command(self, prefix: str, **_: Any) -> Any:
        answers = {
            "pg dump": {
                "pool_stats": [{"poolid": 1, "stat_sum": {"num_object_clones": 0, "num_objects_degraded": 1}}]
            },
            "osd df": {
                "nodes": [{"id": 0, "kb": 100, "kb_used": 10, "kb_avail": 90, "pgs": 8, "utilization": 10.0}]
            },
        }
        return answers[prefix]


def test_pool_figures_missing_from_the_statistics_are_none() -> None:
    listed = {pool.name: pool for pool in pools.list_pools(NewbornCeph())}  # type: ignore[arg-type]
    old, new = listed["old"], listed["new"]
    assert (old.objects, old.stored_bytes, old.write_ops, old.objects_degraded) == (3, 10, 4, 1)
    assert old.object_clones == 0  # reported as 0: a real 0
    for figure in ("objects", "stored_bytes", "used_bytes", "free_bytes", "used_percent", "write_ops",
                   "object_clones", "objects_degraded", "objects_unfound", "objects_missing"):  # fmt: skip
        assert getattr(new, figure) is None, figure


def test_osd_figures_missing_from_osd_df_are_none() -> None:
    listed = {osd.id: osd for osd in osds.list_osds(NewbornCeph())}  # type: ignore[arg-type]
    assert (listed[0].kb, listed[0].pgs, listed[0].utilization) == (100, 8, 10.0)
    assert (listed[1].kb, listed[1].kb_used, listed[1].pgs, listed[1].utilization, listed[1].var) == (
        None,
    ) * 5


class NoChildren:
    def children(self, _path: str) -> list[str]:
        return []


def test_the_api_shows_figures_not_known_as_na() -> None:
    fresh = pools.list_pools(NewbornCeph())[0]  # type: ignore[arg-type]
    assert fresh.name == "new"
    stats = queries._pool_view(NoChildren(), fresh.to_dict())["stats"]  # type: ignore[arg-type]
    assert stats["id"] == 2
    assert {value for key, value in stats.items() if key != "id"} == {NOT_KNOWN}

    new_osd = osds.list_osds(NewbornCeph())[1].to_dict()  # type: ignore[arg-type]
    view = queries._osd_view(new_osd, OsdDevice(), {})["stats"]
    for figure in (
        "utilization",
        "var",
        "pgs",
        "kb",
        "used",
        "avail",
        "wr_ops",
        "rd_ops",
        "wr_data",
        "rd_data",
    ):
        assert view[figure] == NOT_KNOWN, figure
    measured = queries._osd_view(new_osd, OsdDevice(), {"wr_ops": 0, "rd_ops": 2, "wr_data": 0, "rd_data": 9})
    assert (measured["stats"]["wr_ops"], measured["stats"]["rd_data"]) == (0, 9)  # a measured 0 stays 0
