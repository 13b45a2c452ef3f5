"""How libvirt's flat domain statistics become the per-VM figures a keepalive carries."""

from __future__ import annotations

from pvc.hypervisor.adapter import _stats_record


def test_reported_figures_are_renamed():
    record = _stats_record(
        {
            "cpu.time": 30,
            "cpu.user": 20,
            "cpu.system": 10,
            "balloon.current": 2048,
            "balloon.rss": 1024,
            "balloon.last-update": 99,
            "net.count": 1,
            "net.0.rx.bytes": 5,
            "net.0.tx.pkts": 0,
            "block.count": 1,
            "block.0.name": "vda",
            "block.0.rd.reqs": 3,
            "block.0.wr.bytes": 4096,
        }
    )
    assert record == {
        "memory": {"actual": 2048, "rss": 1024, "last_update": 99},
        "vcpu": {"cpu_time": 30, "user_time": 20, "system_time": 10},
        "nics": {"0": {"rd_bytes": 5, "wr_packets": 0}},
        "disks": {"vda": {"rd_req": 3, "wr_bytes": 4096}},
    }


def test_figures_libvirt_left_out_stay_out():
    """A balloon driver that reports nothing gives no memory figures at all (the API shows
    them N/A), not zeros that would read as measurements."""
    assert _stats_record({"net.count": 1, "block.count": 1}) == {
        "memory": {},
        "vcpu": {},
        "nics": {"0": {}},
        "disks": {"0": {}},
    }
