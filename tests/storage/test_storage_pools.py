"""Pools on a real Ceph: create, list with statistics, PG count, remove, errors."""

from __future__ import annotations

import time

import pytest

from pvc.lab.standalone_ceph import LabCeph
from pvc.storage import osds, pools, status, tiers
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError, StorageExists, StorageNotFound, StorageTimeout
from tests.helpers import wait_for
from tests.storage.conftest import POOL


def test_create_list_set_pgs_remove(ceph_client: CephClient, unique) -> None:
    name = unique("pool")
    created = pools.create(ceph_client, name, 8, "copies=1,mincopies=1")
    assert (created.name, created.copies, created.mincopies, created.pg_num) == (name, 1, 1, 8)
    assert created.applications == ["rbd"]
    listed = {pool.name: pool for pool in pools.list_pools(ceph_client)}
    assert name in listed
    assert listed[name].id == created.id

    def reported():  # Ceph's per-pool statistics follow the OSDs' next report
        found = {pool.name: pool for pool in pools.list_pools(ceph_client)}[name]
        return found if found.objects >= 1 else None  # rbd_info, written by the RBD initialisation

    stats = wait_for(reported, timeout=30, interval=0.5)
    assert stats.free_bytes > 0
    assert set(stats.to_dict()) >= {"name", "copies", "mincopies", "pg_num", "used_bytes", "free_bytes"}

    pools.set_pgs(ceph_client, name, 16)
    pool = pools.get(ceph_client, name)
    assert (pool.pg_num, pool.pgp_num) == (16, 16)
    assert pool.pg_num_current in range(8, 17)

    pools.remove(ceph_client, name)
    assert not ceph_client.pool_exists(name)
    with pytest.raises(StorageNotFound):
        pools.get(ceph_client, name)


def test_create_existing_pool(ceph_client: CephClient) -> None:
    with pytest.raises(StorageExists, match="already exists"):
        pools.create(ceph_client, POOL, 8, "copies=1,mincopies=1")
    assert pools.get(ceph_client, POOL).pg_num == 8


@pytest.mark.parametrize(
    "replication",
    ["", "copies=3", "mincopies=2", "copies=2,mincopies=3", "copies=0,mincopies=0", "copies=x,mincopies=1",
     "copies=3,mincopies=2,extra=1", "copies=3;mincopies=2", "copies=-1,mincopies=1", "copies=3,copies=2",
     "copies=11,mincopies=1"],
)  # fmt: skip
def test_bad_replication(ceph_client: CephClient, unique, replication: str) -> None:
    name = unique("pool")
    with pytest.raises(ValueError, match="replication"):
        pools.create(ceph_client, name, 8, replication)
    assert not ceph_client.pool_exists(name)


def test_parse_replication() -> None:
    assert pools.parse_replication("copies=3,mincopies=2") == pools.Replication(3, 2)
    assert pools.parse_replication(" mincopies=1 , copies=2 ") == pools.Replication(2, 1)
    assert str(pools.Replication(3, 2)) == "copies=3,mincopies=2"


@pytest.mark.parametrize("pgs", [0, 3, 12, -8, 65536, True, "8"])
def test_bad_pg_count(ceph_client: CephClient, unique, pgs) -> None:
    with pytest.raises(ValueError, match="PG count"):
        pools.create(ceph_client, unique("pool"), pgs, "copies=1,mincopies=1")


@pytest.mark.parametrize("name", ["", "has space", "a/b", "-lead", "x" * 129])
def test_bad_pool_name(ceph_client: CephClient, name: str) -> None:
    with pytest.raises(ValueError, match="pool name"):
        pools.create(ceph_client, name, 8, "copies=1,mincopies=1")


def test_unknown_pool(ceph_client: CephClient) -> None:
    with pytest.raises(StorageNotFound):
        pools.remove(ceph_client, "no-such-pool")
    with pytest.raises(StorageNotFound):
        pools.set_pgs(ceph_client, "no-such-pool", 8)
    with pytest.raises(StorageNotFound):
        pools.free_bytes(ceph_client, "no-such-pool")


def test_failed_creation_leaves_no_pool(ceph_lab: LabCeph, ceph_client: CephClient, unique) -> None:
    """Two copies on one OSD never go active: initialisation times out and the pool is deleted."""
    name = unique("pool")
    with ceph_lab.client(timeout=1) as client:
        started = time.monotonic()
        with pytest.raises(StorageTimeout):
            pools.create(client, name, 8, "copies=2,mincopies=2")
        assert time.monotonic() - started < 10
        assert not client.pool_exists(name)
    # the statistics show the deleted pool's inactive PGs for another stats period or two
    status.wait_ready(ceph_client, 1, timeout=30, after_change=True)


def test_ceph_message_passes_through(ceph_client: CephClient, unique) -> None:
    with pytest.raises(StorageError, match=r"(?i)pg_num"):
        # more PGs than one OSD may hold (mon_max_pg_per_osd)
        pools.create(ceph_client, unique("pool"), 32768, "copies=1,mincopies=1")


def _device_class(client: CephClient, osd_id: int) -> str | None:
    return next(osd.device_class for osd in osds.list_osds(client) if osd.id == osd_id)


def test_tier_pool_lives_on_the_osds_of_its_device_class(ceph_client: CephClient, unique) -> None:
    osd_id = osds.ids(ceph_client)[0]
    original = _device_class(ceph_client, osd_id)
    name, missing = unique("tierpool"), unique("tierpool")
    try:
        # nothing serves the nvme tier yet: refused before anything is made
        with pytest.raises(ValueError, match="no OSD has device class 'nvme'"):
            pools.create(ceph_client, missing, 8, "copies=1,mincopies=1", tier="nvme")
        assert not ceph_client.pool_exists(missing)

        osds.set_device_class(ceph_client, [osd_id], "nvme")
        assert _device_class(ceph_client, osd_id) == "nvme"
        created = pools.create(ceph_client, name, 8, "copies=1,mincopies=1", tier="nvme")
        assert (created.tier, created.crush_rule) == ("nvme", "nvme_tier")
        rules = {rule["rule_name"]: rule for rule in ceph_client.mon_command("osd crush rule dump")}
        take = next(step for step in rules["nvme_tier"]["steps"] if step["op"] == "take")
        assert take["item_name"] == "default~nvme"  # the class's shadow tree: only nvme OSDs
        spread = [step["type"] for rule in rules.values() for step in rule["steps"] if "type" in step]
        assert len(set(spread)) == 1, "the tier rule keeps the default rule's failure domain"

        # a second pool reuses the rule; the PGs of both are placed and clean
        other = pools.create(ceph_client, unique("tierpool"), 8, "copies=1,mincopies=1", tier="nvme")
        assert [r for r in ceph_client.mon_command("osd crush rule ls") if r == "nvme_tier"] == ["nvme_tier"]
        wait_for(lambda: not status.readiness(ceph_client, 1, require_health_ok=False), timeout=30)
        listed = {pool.name: pool for pool in pools.list_pools(ceph_client)}
        assert listed[name].tier == listed[other.name].tier == "nvme"
        assert listed[POOL].tier == "default"
        pools.remove(ceph_client, other.name)

        # reclassified back: the rule (and Ceph's listing of the class) stays, the tier is empty again
        osds.set_device_class(ceph_client, [osd_id], original or "hdd")
        assert "nvme" in ceph_client.mon_command("osd crush class ls")
        with pytest.raises(ValueError, match="no OSD has device class 'nvme'"):
            pools.create(ceph_client, missing, 8, "copies=1,mincopies=1", tier="nvme")
    finally:
        if ceph_client.pool_exists(name):
            pools.remove(ceph_client, name)
        osds.set_device_class(ceph_client, [osd_id], original or "hdd")


def test_bad_tier_and_device_class(ceph_client: CephClient, unique) -> None:
    name = unique("pool")
    with pytest.raises(ValueError, match="invalid tier"):
        pools.create(ceph_client, name, 8, "copies=1,mincopies=1", tier="fast")
    assert not ceph_client.pool_exists(name)
    with pytest.raises(ValueError, match="invalid device class"):
        osds.set_device_class(ceph_client, osds.ids(ceph_client), "default")
    with pytest.raises(StorageNotFound):
        osds.set_device_class(ceph_client, [999], "ssd")


def test_tier_names() -> None:
    assert tiers.tier_of_rule(tiers.tier_rule_name("ssd")) == "ssd"
    assert tiers.tier_of_rule("replicated_rule") == "default"
    assert tiers.tier_of_rule("default_tier") == "default"  # not a device class
    assert tiers.tier_of_rule("fast_tier") == "default"  # a rule PVC did not make
