"""Replication on a real 3-OSD Ceph of its own: I/O goes on with one OSD down, and the PGs heal after."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from pvc.lab import standalone_ceph
from pvc.storage import daemons, osds, pools, status, volumes
from pvc.storage.client import CephClient
from pvc.storage.images import open_image
from pvc.storage.units import parse_size
from tests.storage.conftest import _port_taken

pytestmark = pytest.mark.storage_replication

#: apart from the session cluster's ports (13310/16799, 17400-17600) and the lab's
PORTS = standalone_ceph.Ports(mon_v2=13410, mon_v1=16899, bind_min=17700, bind_max=17900)
POOL = "replicated"
MIB = parse_size("1M")


def write(client: CephClient, name: str, offset: int, data: bytes) -> None:
    with open_image(client, POOL, name, read_only=False) as image:
        image.write(data, offset)
        image.flush()


def read(client: CephClient, name: str, offset: int, length: int) -> bytes:
    with open_image(client, POOL, name) as image:
        return image.read(offset, length)


def wait_down(client: CephClient, osd_id: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while osds.get(client, osd_id).up:
        assert time.monotonic() < deadline, f"osd.{osd_id} still up {timeout:.0f} s after it was killed"
        time.sleep(0.2)


def wait_degraded(client: CephClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any("degraded" in state for state in status.cluster_status(client).pgs_by_state):
        assert time.monotonic() < deadline, f"no PG shown degraded {timeout:.0f} s after an OSD went down"
        time.sleep(0.2)


def test_io_with_one_of_three_osds_down(tmp_path: Path) -> None:
    missing = [tool for tool in ("ceph-mon", "ceph-mgr", "ceph-osd", "monmaptool") if not shutil.which(tool)]
    if missing:
        pytest.fail(
            f"Ceph is not installed ({', '.join(missing)} missing): run scripts/setup.sh", pytrace=False
        )
    taken = [port for port in (PORTS.mon_v2, PORTS.mon_v1) if _port_taken(port)]
    if taken:
        pytest.fail(f"replication test monitor port(s) {taken} already in use on 127.0.0.1", pytrace=False)
    lab: standalone_ceph.LabCeph | None = None
    try:
        lab = standalone_ceph.start(tmp_path / "ceph", 3, ports=PORTS, pool=None, die_with_parent=True)
        with lab.client(timeout=20) as client:
            created = pools.create(client, POOL, 16, "copies=3,mincopies=2")
            assert (created.copies, created.mincopies) == (3, 2)
            volumes.create(client, POOL, "disk", 16 * MIB)
            before = os.urandom(4 * MIB)
            write(client, "disk", 0, before)

            # one OSD crashes: the other two hold a copy of everything and are enough (mincopies=2)
            victim = lab.osd_ids[0]
            daemons.stop([lab.processes.pop(f"osd.{victim}")], grace=0)
            wait_down(client, victim)
            after = os.urandom(4 * MIB)
            write(client, "disk", 8 * MIB, after)
            assert read(client, "disk", 0, 4 * MIB) == before
            assert read(client, "disk", 8 * MIB, 4 * MIB) == after
            assert status.readiness(client, 3), "the cluster should not count as ready with an OSD down"
            # PG statistics lag: see the PGs degraded first, so that "clean" below is not the old state
            wait_degraded(client)

            # it comes back, catches up on what it missed, and every PG is active+clean again
            lab.processes[f"osd.{victim}"] = daemons.start_osd(
                lab.conf_path, victim, lab.directory / "data", lab.directory / "log", die_with_parent=True
            )
            osds.wait_up(client, [victim], timeout=60)
            status.wait_ready(client, 3, timeout=60, after_change=True)
            assert read(client, "disk", 0, 4 * MIB) == before
            assert read(client, "disk", 8 * MIB, 4 * MIB) == after
            pool = pools.get(client, POOL)
            assert (pool.copies, pool.mincopies) == (3, 2) and pool.objects > 0
    finally:
        if lab is not None:
            lab.stop(grace=0)
        shutil.rmtree(tmp_path / "ceph" / "data", ignore_errors=True)
