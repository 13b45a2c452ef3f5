"""The state layer against a real ZooKeeper."""

import pytest

from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.errors import ConflictError, SchemaError
from pvc.state.logring import LogRingWriter, read_log
from pvc.state.records import NO_PRIMARY, NodeStatic, encode
from pvc.state.schema import CURRENT_VERSION, STEPS, ensure_schema, read_version
from pvc.state.store import Commit, Transaction
from tests.helpers import wait_for


def test_fresh_cluster_gets_schema_and_roots(store):
    assert read_version(store) == 0
    assert ensure_schema(store) == (0, CURRENT_VERSION)
    for root in paths.ROOTS:
        assert store.exists(root)
    assert store.get_text(paths.PRIMARY_NODE) == NO_PRIMARY
    assert store.get_text(paths.MAINTENANCE) == "false"
    assert ensure_schema(store) == (CURRENT_VERSION, CURRENT_VERSION)


def test_upgrade_steps_run_in_order_each_atomic(store):
    ensure_schema(store)
    ran = []

    first, second = CURRENT_VERSION + 1, CURRENT_VERSION + 2

    def step_a(s, txn):
        ran.append(first)
        txn.create("/config/feature_a", "on")

    def step_b(s, txn):
        ran.append(second)
        txn.create("/config/feature_b", "on")
        txn.create("/config/feature_a", "again")  # exists: the whole step must fail

    with pytest.raises(ConflictError):
        ensure_schema(store, steps={**STEPS, first: step_a, second: step_b})
    assert ran == [first, second]
    assert read_version(store) == first
    assert store.get_text("/config/feature_a") == "on"
    assert not store.exists("/config/feature_b")


def test_newer_schema_is_refused(store):
    ensure_schema(store)
    store.set(paths.SCHEMA_VERSION, str(CURRENT_VERSION + 1))
    with pytest.raises(SchemaError, match="upgrade PVC"):
        ensure_schema(store)


def test_transaction_is_all_or_nothing(store):
    store.set("/a", "1")
    txn = Transaction()
    txn.set("/a", "2")
    txn.create("/b", "x")
    txn.check("/a", 99)
    with pytest.raises(ConflictError, match="check /a"):
        store.commit(txn)
    assert store.get_text("/a") == "1"
    assert not store.exists("/b")
    with store.transaction() as txn:
        txn.set("/a", "3")
        txn.create("/b", "y")
    assert (store.get_text("/a"), store.get_text("/b")) == ("3", "y")


def test_cache_remembers_a_decoding_until_the_znode_changes_and_forgets_removed_ones(make_store):
    writer = make_store()
    ensure_schema(writer)
    cache = ClusterCache(make_store())
    cache.start()
    assert cache.wait_ready(10)
    decoded = []

    def decode(data):
        decoded.append(data)
        return (data or b"").upper()

    path = paths.node("p1")
    cache.wait_for(writer.set(path, b"one"), 5)
    assert [cache.parsed(path, decode) for _ in range(3)] == [b"ONE"] * 3
    assert decoded == [b"one"]
    cache.wait_for(writer.set(path, b"two"), 5)
    assert cache.parsed(path, decode) == b"TWO" and decoded == [b"one", b"two"]
    cache.forget_parsed()
    assert cache.parsed(path, decode) == b"TWO" and len(decoded) == 3
    # many znodes decoded, then removed: their decodings do not stay once the memory doubles
    with writer.transaction() as txn:
        for i in range(1500):
            txn.create(paths.node(f"m{i}"), b"x")
    wait_for(lambda: all(cache.data(paths.node(f"m{i}")) == b"x" for i in range(1500)), 10)
    for i in range(1500):
        cache.parsed(paths.node(f"m{i}"), decode)
    with writer.transaction() as txn:
        for i in range(1500):
            txn.delete(paths.node(f"m{i}"))
    wait_for(lambda: len(cache.node_names()) == 1, 10)
    with writer.transaction() as txn:
        for i in range(600):
            txn.create(paths.node(f"q{i}"), b"y")
    wait_for(lambda: all(cache.data(paths.node(f"q{i}")) == b"y" for i in range(600)), 10)
    for i in range(600):  # the memory reaches twice what lived at the last sweep: the removed go
        cache.parsed(paths.node(f"q{i}"), decode)
    remembered = set(cache._decoded)
    assert not any(path.startswith(paths.node("m")) for path in remembered)
    missing = sorted(set(paths.node(f"q{i}") for i in range(600)) - remembered)
    assert not missing and len(remembered) <= 602, (len(remembered), missing[:5])


def test_cache_follows_writes_and_builds_records(make_store):
    writer = make_store()
    ensure_schema(writer)
    reader = make_store()
    cache = ClusterCache(reader)
    cache.start()
    assert cache.wait_ready(10)
    assert cache.node("n1") is None
    with writer.transaction() as txn:
        txn.create(paths.node("n1"), encode(NodeStatic(name="n1", mode="coordinator", cpu_count=2)))
        txn.create(paths.node_daemon_state("n1"), "run")
        txn.create(paths.node_keepalive("n1"), encode({"timestamp": 12.5, "load": 0.1}))
    record = wait_for(lambda: cache.node("n1") if cache.node("n1") and cache.node("n1").keepalive else None)
    assert record.daemon_state == "run"
    assert record.static.cpu_count == 2
    assert record.is_coordinator
    assert record.keepalive.timestamp == 12.5
    ops_before = reader.operations
    writer.set(paths.node_daemon_state("n1"), "dead")
    wait_for(lambda: cache.node("n1").daemon_state == "dead", 5)
    writer.set(paths.PRIMARY_NODE, "n1")
    wait_for(lambda: cache.cluster_config().primary_node == "n1", 5)
    assert reader.operations == ops_before  # reads came from the cache, not round trips
    writer.delete(paths.node("n1"), recursive=True)
    wait_for(lambda: cache.node("n1") is None, 5)

    # read-your-writes: wait_for returns once the watches delivered the write (or times out)
    written = writer.set(paths.PRIMARY_NODE, "n2") + writer.delete(paths.node("n1"), recursive=True)
    assert cache.wait_for(written, 5)
    assert cache.cluster_config().primary_node == "n2"
    assert cache.mzxid(paths.PRIMARY_NODE) >= written.changed[paths.PRIMARY_NODE] > 0
    txn = Transaction()
    txn.create(paths.node("n4"), "")
    created = writer.commit(txn)
    assert cache.wait_for(created, 5) and cache.data(paths.node("n4")) == b""
    never = Commit(written.zxid + 10**6, {paths.PRIMARY_NODE: written.zxid + 10**6})
    assert not cache.wait_for(never, 0.05)
    assert not cache.wait_for(Commit(created.zxid, deleted=frozenset({paths.node("n4")})), 0.05)
    cache.close()


def test_log_ring_is_bounded_and_ordered(store):
    ensure_schema(store)
    writer = LogRingWriter("n1", max_lines=62, slots=32)
    writer.resume(store)
    for batch in range(10):
        for i in range(25):
            writer.append(f"b{batch} l{i}")
        txn = Transaction()
        writer.add_to(txn)
        store.commit(txn)
    lines = read_log(store, "n1")
    assert lines[-1] == "b9 l24"
    assert 62 <= len(lines) <= 64
    assert lines == [f"b{b} l{i}" for b in range(10) for i in range(25)][-len(lines) :]
    assert read_log(store, "n1", lines=3) == ["b9 l22", "b9 l23", "b9 l24"]
    # a restarted writer continues after the newest slot
    again = LogRingWriter("n1", max_lines=62, slots=32)
    again.resume(store)
    again.append("after restart")
    txn = Transaction()
    again.add_to(txn)
    store.commit(txn)
    assert read_log(store, "n1")[-2:] == ["b9 l24", "after restart"]
