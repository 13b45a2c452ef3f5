"""Storage views: figures the primary has not measured read N/A, never 0."""

from __future__ import annotations

from pvc.cluster.storage.queries import _osd_view, _volume_view
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


def test_volume_figures_not_read_from_ceph_are_not_known():
    volume = {
        "name": "vm1_disk0",
        "pool": "vms",
        "id": "ab12",
        "size": 2**30,
        "created": "2026-01-02T03:04:05",
    }
    stats = _volume_view(volume)["stats"]
    assert stats["create_timestamp"] == "2026-01-02T03:04:05"
    assert stats["access_timestamp"] == stats["modify_timestamp"] == "N/A"  # not the creation time
    assert stats["op_features"] == stats["flags"] == "N/A"  # not "none"
