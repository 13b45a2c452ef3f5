"""OSDs on a real Ceph: listing with statistics, out/in, flags, adding and removing a file OSD."""

from __future__ import annotations

import time

import pytest

from pvc import processes
from pvc.lab import standalone_ceph
from pvc.storage import daemons, osd_io, osds, status, volumes
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageNotFound
from pvc.storage.images import open_image
from tests.storage.conftest import POOL


def wait_ready(client: CephClient, count: int = 1) -> None:
    status.wait_ready(client, count, timeout=60, after_change=True)


def test_list_shows_one_osd_with_stats(ceph_client: CephClient) -> None:
    [osd] = osds.list_osds(ceph_client)
    assert osd.up and osd.in_
    assert osd.host and osd.device_class == "hdd"
    assert osd.kb > 0 and osd.kb_avail > 0 and osd.kb_used > 0
    assert osd.pgs > 0 and osd.reweight == 1.0 and osd.weight > 0
    assert osd.to_dict()["in"] is True
    assert osds.get(ceph_client, osd.id).uuid == osd.uuid


def test_out_and_in(ceph_client: CephClient) -> None:
    [osd_id] = osds.ids(ceph_client)
    osds.set_out(ceph_client, [osd_id])
    try:
        assert not osds.get(ceph_client, osd_id).in_
        assert not status.is_ready(ceph_client, 1)
    finally:
        osds.set_in(ceph_client, [osd_id])
    assert osds.get(ceph_client, osd_id).in_
    wait_ready(ceph_client)


def test_an_osd_marked_down_is_down_until_it_says_otherwise(ceph_client: CephClient) -> None:
    """What a fence does to the OSDs of a node it powered off; a live OSD comes back up."""
    [osd_id] = osds.ids(ceph_client)

    def down_at() -> int:
        return ceph_client.mon_command("osd dump")["osds"][0]["down_at"]

    before = down_at()
    osds.mark_down(ceph_client, [osd_id])
    assert down_at() > before  # the map records the OSD going down at a new epoch
    deadline = time.monotonic() + 60
    while not osds.get(ceph_client, osd_id).up:
        assert time.monotonic() < deadline, "a live OSD did not mark itself up again"
        time.sleep(0.5)
    wait_ready(ceph_client)


def test_unknown_osd(ceph_client: CephClient) -> None:
    with pytest.raises(StorageNotFound, match=r"osd\.99"):
        osds.set_out(ceph_client, [99])
    with pytest.raises(StorageNotFound):
        osds.set_in(ceph_client, ["osd.99"])
    with pytest.raises(StorageNotFound):
        osds.get(ceph_client, 99)
    with pytest.raises(ValueError):
        osds.set_in(ceph_client, ["x"])


def test_flags(ceph_client: CephClient) -> None:
    osds.set_flag(ceph_client, "noout")
    osds.set_flag(ceph_client, "noscrub")
    try:
        assert {"noout", "noscrub"} <= set(osds.flags(ceph_client))
        checks = status.cluster_status(ceph_client).checks
        assert "OSDMAP_FLAGS" in checks
    finally:
        osds.unset_flag(ceph_client, "noout")
        osds.unset_flag(ceph_client, "noscrub")
    assert not {"noout", "noscrub"} & set(osds.flags(ceph_client))
    for bad in ("foo", "full", "pglog_hardlimit", ""):
        with pytest.raises(ValueError, match="unknown OSD flag"):
            osds.set_flag(ceph_client, bad)
    with pytest.raises(ValueError):
        osds.unset_flag(ceph_client, "sortbitwise")


def test_add_and_remove_file_osd(ceph_lab: standalone_ceph.LabCeph, ceph_client: CephClient) -> None:
    """Added "out", the new OSD takes no data, so it can be removed again at once."""
    osd_id = ceph_lab.add_osd(start_out=True)
    process = ceph_lab.processes[f"osd.{osd_id}"]
    try:
        listed = {osd.id: osd for osd in osds.list_osds(ceph_client)}
        assert listed[osd_id].up and not listed[osd_id].in_
        assert "noin" in listed[osd_id].state  # kept out across its first boot
        # what remove_osd falls back to when it is not handed the process
        pid_file = daemons.pid_file(ceph_lab.conf_path, f"osd.{osd_id}")
        assert pid_file == ceph_lab.directory / "run" / f"osd.{osd_id}.pid"
        found = daemons.process_from_pid_file(pid_file, ceph_lab.conf_path)
        assert found is not None and (found.pid, found.start_time) == (process.pid, process.start_time)
        assert daemons.process_from_pid_file(pid_file, "/elsewhere/ceph.conf") is None
        ceph_lab.remove_osd(osd_id, timeout=30)
    finally:
        daemons.stop([process], grace=0)
    assert osd_id not in osds.ids(ceph_client) and osd_id not in ceph_lab.osd_ids
    assert not (ceph_lab.directory / "data" / f"osd.{osd_id}").exists()
    assert not processes.is_alive(process)
    # it never held data: the cluster is as ready as before
    assert status.readiness(ceph_client, 1) == []


def test_op_counters_count_client_writes(ceph_client: CephClient, unique) -> None:
    [osd_id] = osds.ids(ceph_client)
    before = osd_io.op_counters(ceph_client, osd_id)
    name = unique("counters")
    volumes.create(ceph_client, POOL, name, 4 * 2**20)
    try:
        with open_image(ceph_client, POOL, name, read_only=False) as image:
            image.write(b"y" * 2**20, 0)
            assert image.read(0, 16) == b"y" * 16
    finally:
        volumes.remove(ceph_client, POOL, name)
    after = osd_io.op_counters(ceph_client, osd_id)
    assert after.wr_ops > before.wr_ops and after.wr_bytes >= before.wr_bytes + 2**20
    assert after.rd_ops > before.rd_ops and after.rd_bytes >= before.rd_bytes + 16
    with pytest.raises(StorageNotFound):
        osd_io.op_counters(ceph_client, 99)
