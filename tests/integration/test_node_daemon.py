"""Node daemons (in threads) against a real ZooKeeper: registration, keepalive, states."""

import os
import signal
import subprocess
import sys
import time

import yaml

from pvc.state import paths
from pvc.state.logring import read_log
from pvc.state.records import Keepalive, NodeStatic
from pvc.state.store import Store
from tests.helpers import node_config, node_config_data, wait_for


def states(store: Store, name: str) -> tuple[str, str, str]:
    return (
        store.get_text(paths.node_daemon_state(name)),
        store.get_text(paths.node_coordinator_state(name)),
        store.get_text(paths.node_domain_state(name)),
    )


def test_registration_keepalive_and_clean_stop(cluster, store):
    node = cluster("n1", ["n1"])
    wait_for(lambda: states(store, "n1") == ("run", "primary", "ready"))
    static = NodeStatic.from_bytes(store.get(paths.node("n1")))
    assert static.mode == "coordinator"
    assert static.cpu_count == os.cpu_count()
    assert static.kernel and static.arch and static.os and static.pvc_version
    assert static.cluster_address == str(node.loop.config.networks.cluster.address.ip)
    first = Keepalive.from_bytes(store.get(paths.node_keepalive("n1")))
    wait_for(lambda: Keepalive.from_bytes(store.get(paths.node_keepalive("n1"))).timestamp > first.timestamp)
    keepalive = Keepalive.from_bytes(store.get(paths.node_keepalive("n1")))
    assert keepalive.memory_mib.total > 0 and keepalive.memory_mib.free > 0
    assert store.exists(paths.node_presence("n1"))
    node.stop()
    assert states(store, "n1") == ("stop", "secondary", "ready")
    assert store.get_text(paths.PRIMARY_NODE) == "none"
    assert not store.exists(paths.node_presence("n1"))
    log = read_log(store, "n1")
    assert any("became primary" in line for line in log)
    assert "daemon state stop" in log[-1]


def test_a_daemon_without_zookeeper_waits_between_cycles_instead_of_spinning(cluster, store):
    node = cluster("n2", ["n1"])
    wait_for(lambda: states(store, "n2") == ("run", "client", "ready"))
    cycles = []
    real_cycle = node.loop.run_cycle
    node.loop.run_cycle = lambda: cycles.append(time.monotonic()) or real_cycle()
    node.store.stop()  # ZooKeeper gone; the keepalive falls overdue
    time.sleep(node.loop.config.timers.keepalive_interval + 0.5)
    counted = len(cycles)
    time.sleep(1.0)
    assert 3 <= len(cycles) - counted <= 15  # about one each 0.1 s, not thousands


def test_hypervisor_is_client_and_never_primary(cluster, store):
    cluster("c1", ["c1"])
    cluster("h1", ["c1"], index=2)
    wait_for(lambda: states(store, "h1") == ("run", "client", "ready"))
    assert store.get_text(paths.PRIMARY_NODE) == "c1"
    assert NodeStatic.from_bytes(store.get(paths.node("h1"))).mode == "hypervisor"


def test_keepalive_is_one_transaction(zk_hosts, make_store):
    from pvc.node.loop import NodeLoop

    config = node_config("n1", ["n1"], zk_hosts, keepalive_interval=0.1, fence_intervals=12)
    store = make_store(timeout=1.0)
    loop = NodeLoop(config, store)
    loop.start()
    loop.run_cycle()  # first election: takes over
    time.sleep(0.15)
    loop.run_cycle()
    counts = []
    for _ in range(5):
        time.sleep(0.12)
        before, keepalives = store.operations, loop.keepalives
        loop.run_cycle()
        assert loop.keepalives == keepalives + 1
        counts.append(store.operations - before)
    assert counts == [1] * 5
    loop.shutdown()


def test_keepalive_reports_the_configured_network_devices(zk_hosts, make_store):
    from pvc.config import parse_config
    from pvc.node.loop import NodeLoop

    data = node_config_data("n1", ["n1"], zk_hosts, keepalive_interval=0.1, fence_intervals=12)
    # The storage network on loopback, without a floating address (nothing is added to lo).
    data["networks"]["storage"] = {"device": "lo", "address": "10.120.0.1/24"}
    store = make_store(timeout=1.0)
    loop = NodeLoop(parse_config(data), store)
    loop.start()
    try:
        loop.run_cycle()
        first = Keepalive.from_bytes(store.get(paths.node_keepalive("n1"))).interfaces
        assert set(first) == {"lo"} and first["lo"]["rx_bps"] == "N/A"  # one sample: no rate yet
        assert first["lo"]["mtu"] > 0 and first["lo"]["link_speed"] == "N/A"
        sent = loop.keepalives
        wait_for(lambda: (loop.run_cycle(), loop.keepalives >= sent + 2)[1])
        later = Keepalive.from_bytes(store.get(paths.node_keepalive("n1"))).interfaces["lo"]
        # ZooKeeper traffic runs over loopback between the two keepalives
        assert later["rx_bps"] > 0 and later["tx_pps"] > 0
    finally:
        loop.shutdown()


def test_peers_mark_a_silent_node_dead_and_it_recovers(zk_hosts, make_store):
    from pvc.node.loop import NodeLoop

    loops = {}
    for i, name in enumerate(("n1", "n2"), start=1):
        config = node_config(
            name, ["n1", "n2"], zk_hosts, keepalive_interval=0.1, fence_intervals=12, index=i
        )
        loops[name] = NodeLoop(config, make_store(timeout=1.0))
        loops[name].start()
    observer = make_store()

    def cycle(*names):
        for name in names:
            loops[name].step()

    cycle("n1", "n2")
    silent_since = time.time()
    # n2 stops cycling (a hung daemon: its session stays up, its keepalives stop)
    while observer.get_text(paths.node_daemon_state("n2")) != "dead":
        assert time.time() - silent_since < 10, "n2 was never marked dead"
        cycle("n1")
        time.sleep(0.05)
    elapsed = time.time() - silent_since
    # dead window is 0.1 s x 12, counted from when n1 last saw n2's keepalive change: that
    # can be up to one keepalive interval before silent_since
    assert 1.1 <= elapsed < 3.0
    assert observer.get_text(paths.node_daemon_state("n1")) == "run"
    assert any("marked node n2 dead" in line for line in _flush_and_read(loops["n1"], observer, "n1"))
    # n2 wakes up: its next keepalive puts it back in run
    loops["n2"]._next_keepalive = 0
    wait_for(lambda: cycle("n2") or observer.get_text(paths.node_daemon_state("n2")) == "run", 5)
    for loop in loops.values():
        loop.shutdown()


def _flush_and_read(loop, store, name):
    loop._next_keepalive = 0
    loop.step()
    return read_log(store, name)


def test_unreachable_zookeeper_retries_without_traceback_or_writes(tmp_path, zk_server, store):
    data = node_config_data("n1", ["n1"], "127.0.0.1:1")  # nothing listens on port 1
    path = tmp_path / "pvc.conf"
    path.write_text(yaml.safe_dump(data))
    process = subprocess.Popen(
        [sys.executable, "-m", "pvc.node.daemon"],
        env={**os.environ, "PVC_CONFIG_FILE": str(path)},
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "ZooKeeper at 127.0.0.1:1 is unreachable (attempt 1); retrying" in stderr
    assert "nothing was written" in stderr
    assert store.children("/") == []  # the test's chroot stays empty
