"""Storage views: figures the primary has not measured read N/A, never 0."""

from __future__ import annotations

from pvc.cluster.storage.queries import _osd_view
from pvc.state.osd_devices import OsdDevice

OSD = {"id": 3, "uuid": "u", "up": True, "in": True, "kb": 1024, "kb_used": 512, "kb_avail": 512}


def test_osd_io_rates_are_not_known_until_measured():
    stats = _osd_view(OSD, OsdDevice(node="hv1", device="/dev/sdb"), {})["stats"]
    assert {key: stats[key] for key in ("wr_ops", "rd_ops", "wr_data", "rd_data")} == dict.fromkeys(
        ("wr_ops", "rd_ops", "wr_data", "rd_data"), "N/A"
    )


def test_measured_osd_io_rates_are_shown_even_when_idle():
    io = {"wr_ops": 0, "rd_ops": 4, "wr_data": 0, "rd_data": 4096}
    stats = _osd_view(OSD, OsdDevice(node="hv1"), io)["stats"]
    assert (stats["wr_ops"], stats["rd_ops"], stats["wr_data"], stats["rd_data"]) == (0, 4, 0, 4096)
