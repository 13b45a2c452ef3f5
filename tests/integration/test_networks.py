"""Client network records and checked writes on a real ZooKeeper: layout, races, removal."""

from __future__ import annotations

import threading

import pytest

from pvc.cluster.errors import ClusterError
from pvc.cluster.network import acls, actions, queries
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.state import networks as records
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.errors import ConflictError, StateError

NET = {
    "domain": "lab.example.com",
    "ip4_network": "10.50.0.0/24",
    "ip4_gateway": "10.50.0.1",
    "dhcp4": True,
    "dhcp4_start": "10.50.0.100",
    "dhcp4_end": "10.50.0.200",
}


def test_the_layout_in_zookeeper(domain_cluster):
    store = domain_cluster.store
    actions.add_network(domain_cluster, 50, "lab", "managed", **NET)
    assert store.children(paths.network(50)) == ["acls", "leases", "reservations"]
    record = records.Network.from_bytes(store.get(paths.network(50)))
    assert record is not None and (record.vni, record.dhcp4, record.mtu) == (50, True, None)
    actions.add_reservation(domain_cluster, 50, "52:54:00:AA:00:01", "10.50.0.10", "db")
    stored = records.Reservation.from_bytes(store.get(paths.network_reservation(50, "52:54:00:aa:00:01")))
    assert stored == records.Reservation(mac="52:54:00:aa:00:01", ip4_address="10.50.0.10", hostname="db")
    acls.add_acl(domain_cluster, 50, "ssh", "tcp dport 22 accept")
    assert records.Acl.from_bytes(store.get(paths.network_acl(50, "ssh"))).order == 1
    # the cache (the API's reads) shows each write as soon as the call returns
    assert [n["vni"] for n in queries.list_networks(domain_cluster)] == [50]
    assert queries.list_leases(domain_cluster, 50)[0]["hostname"] == "db"


def test_the_lease_hook_writes_and_removes_leases(domain_cluster):
    actions.add_network(domain_cluster, 50, "lab", "managed", **NET)
    store = domain_cluster.store
    records.put_lease(
        store, 50, "52:54:00:AA:00:02", "10.50.0.120", hostname="pc", expiry=1800000000, client_id="01:x"
    )
    lease = records.Lease.from_bytes(store.get(paths.network_lease(50, "52:54:00:aa:00:02")))
    assert lease == records.Lease("52:54:00:aa:00:02", "10.50.0.120", "pc", 1800000000, "01:x")
    records.put_lease(
        store, 50, "52:54:00:aa:00:02", "10.50.0.121", expiry=1800000600
    )  # a renewal replaces it
    assert records.read_leases(records.StoreReader(store), 50)[0].ip4_address == "10.50.0.121"
    records.remove_lease(store, 50, "52:54:00:AA:00:02")
    assert store.children(paths.network_leases(50)) == []
    records.remove_lease(store, 50, "52:54:00:aa:00:02")  # already gone is fine
    with pytest.raises(StateError, match="network 51 does not exist"):
        records.put_lease(store, 51, "52:54:00:aa:00:02", "10.50.0.121")


def test_removal_takes_everything_in_one_transaction(domain_cluster):
    store = domain_cluster.store
    actions.add_network(domain_cluster, 50, "lab", "managed", **NET)
    actions.add_reservation(domain_cluster, 50, "52:54:00:aa:00:01", "10.50.0.10")
    records.put_lease(store, 50, "52:54:00:aa:00:03", "10.50.0.150", expiry=1)
    acls.add_acl(domain_cluster, 50, "ssh", "tcp dport 22 accept")
    acls.add_acl(domain_cluster, 50, "out", "accept", direction="out")
    actions.remove_network(domain_cluster, 50)
    assert store.children(paths.NETWORKS) == []
    assert queries.list_networks(domain_cluster) == []


def test_a_stale_version_writes_nothing(domain_cluster):
    store = domain_cluster.store
    actions.add_network(domain_cluster, 50, "lab", "managed", **NET)
    reader = records.StoreReader(store)
    stale = records.read_versions(reader, 50)
    actions.add_reservation(domain_cluster, 50, "52:54:00:aa:00:01", "10.50.0.10")
    reservation = records.Reservation("52:54:00:aa:00:02", "10.50.0.10")
    with pytest.raises(ConflictError):
        records.put_reservation(store, 50, reservation, stale)
    assert store.children(paths.network_reservations(50)) == ["52:54:00:aa:00:01"]
    # a lease written meanwhile makes a removal read again rather than leave it behind
    versions = records.read_versions(reader, 50)
    records.put_lease(store, 50, "52:54:00:aa:00:09", "10.50.0.160")
    commit = records.delete_network(store, 50, versions)
    assert paths.network_lease(50, "52:54:00:aa:00:09") in commit.deleted


def test_racing_writers_cannot_both_win(domain_cluster, make_store):
    """Eight clients reserve the same address for different MACs, and add overlapping networks,
    at once: exactly one of each wins, and the losers are told why."""
    actions.add_network(domain_cluster, 50, "lab", "managed", **NET)
    others = []
    for _ in range(8):
        store = make_store()
        cache = ClusterCache(store, API_ROOTS)
        cache.start()
        assert cache.wait_ready(10)
        others.append(Cluster(store, cache))
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(others))

    def reserve(index: int, cluster: Cluster) -> None:
        start.wait()
        try:
            actions.add_reservation(cluster, 50, f"52:54:00:bb:00:{index:02x}", "10.50.0.77")
            result = "ok"
        except ClusterError as error:
            result = str(error)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=reserve, args=(i, c)) for i, c in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("ok") == 1, outcomes
    assert all("already reserved" in o for o in outcomes if o != "ok")

    outcomes.clear()
    start = threading.Barrier(len(others))

    def add(index: int, cluster: Cluster) -> None:
        start.wait()
        try:
            actions.add_network(
                cluster,
                60 + index,
                f"n{index}",
                "managed",
                ip4_network="10.60.0.0/24",
                ip4_gateway="10.60.0.1",
            )
            result = "ok"
        except ClusterError as error:
            result = str(error)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=add, args=(i, c)) for i, c in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("ok") == 1, outcomes
    assert all("overlaps 10.60.0.0/24" in o for o in outcomes if o != "ok")
    for cluster in others:
        cluster.cache.close()
