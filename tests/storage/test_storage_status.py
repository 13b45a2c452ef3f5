"""Cluster status, utilization, readiness and the client's error mapping and timeouts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pvc.lab.standalone_ceph import LabCeph
from pvc.storage import status
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError, StorageNotFound, StorageTimeout


def test_status_and_utilization(ceph_lab: LabCeph, ceph_client: CephClient) -> None:
    summary = status.cluster_status(ceph_client)
    assert summary.fsid == ceph_lab.fsid == ceph_client.fsid()
    assert summary.mons == 1 and summary.quorum == ["a"]
    assert summary.mgr_available
    assert (summary.osds, summary.osds_up, summary.osds_in) == (1, 1, 1)
    assert summary.pgs > 0 and summary.pools >= 1
    assert summary.to_dict()["health"] in ("HEALTH_OK", "HEALTH_WARN")

    usage = status.utilization(ceph_client)
    assert usage.total_bytes == 10 * 1024**3
    assert 0 < usage.used_bytes < usage.total_bytes
    assert usage.avail_bytes > 0 and 0 < usage.used_percent < 100
    assert "hdd" in usage.by_class
    assert "rbd" in {pool["name"] for pool in usage.pools}


def test_readiness(ceph_client: CephClient) -> None:
    assert status.readiness(ceph_client, 1) == []
    assert status.is_ready(ceph_client, 1)
    problems = status.readiness(ceph_client, 2)
    assert problems == ["OSDs up/in 1/1 of 2"]
    assert not status.is_ready(ceph_client, 2)


def test_command_errors(ceph_client: CephClient) -> None:
    with pytest.raises(StorageNotFound, match="unrecognized pool"):
        ceph_client.mon_command("osd pool set", pool="no-such-pool", var="size", val="1")
    with pytest.raises(StorageError):
        ceph_client.mon_command("no such command")
    assert isinstance(ceph_client.mon_command("osd ls"), list)
    assert "safe_to_destroy" in ceph_client.mgr_command("osd safe-to-destroy", ids=["0"])
    with pytest.raises(StorageNotFound), ceph_client.ioctx("no-such-pool"):
        pass


def test_unreachable_cluster_times_out(ceph_lab: LabCeph, tmp_path: Path) -> None:
    """A cluster whose monitor does not answer makes connect fail within the timeout."""
    conf = ceph_lab.conf_path.read_text().replace(
        f"mon host = [v2:127.0.0.1:{ceph_lab.ports.mon_v2},v1:127.0.0.1:{ceph_lab.ports.mon_v1}]",
        "mon host = [v2:127.0.0.1:9,v1:127.0.0.1:9]",
    )
    assert "127.0.0.1:9," in conf
    (tmp_path / "ceph.conf").write_text(conf)
    started = time.monotonic()
    with pytest.raises(StorageTimeout):
        CephClient(tmp_path / "ceph.conf", timeout=2)
    assert time.monotonic() - started < 6


def test_client_lifecycle(ceph_lab: LabCeph) -> None:
    client = CephClient(ceph_lab.conf_path, connect=False)
    assert not client.connected
    with pytest.raises(StorageError, match="not connected"):
        client.mon_command("status")
    client.connect()
    assert client.connected and client.pool_exists("rbd")
    client.close()
    assert not client.connected
    with pytest.raises(ValueError):
        CephClient(ceph_lab.conf_path, timeout=0)


@pytest.mark.parametrize(
    ("state", "clean"),
    [("active+clean", True), ("active+clean+snaptrim", True), ("active+clean+scrubbing+deep", True),
     ("active+clean+snaptrim_wait", True), ("active+undersized+degraded", False), ("peering", False),
     ("active+clean+remapped", False), ("active+recovering", False), ("clean", False)],
)  # fmt: skip
def test_pg_states_that_count_as_clean(state: str, clean: bool) -> None:
    assert status.pg_is_clean(state) is clean
