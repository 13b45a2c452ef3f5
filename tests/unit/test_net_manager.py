"""What wakes the client-network reconciler (pvc.node.net_manager)."""

from __future__ import annotations

import pytest

from pvc.config import parse_config
from pvc.node.background import PassThread
from pvc.node.net_manager import NetManager
from pvc.state import paths
from pvc.state.networks import is_lease_path
from tests.helpers import node_config_data


@pytest.fixture
def manager(tmp_path) -> NetManager:
    data = node_config_data("n1", ["n1"], "127.0.0.1:2181", state_dir=str(tmp_path))
    return NetManager(parse_config(data), cluster=None)  # type: ignore[arg-type]


def woken(manager: NetManager, path: str) -> bool:
    fresh = PassThread("test", lambda: None, 1.0)
    manager._thread = fresh
    manager.on_change(path)
    return fresh.woken


def test_lease_paths_are_told_apart() -> None:
    assert is_lease_path(paths.network_lease(100, "52:54:00:00:00:01"))
    assert is_lease_path(paths.network_leases(100))
    assert not is_lease_path(paths.network(100))
    assert not is_lease_path(paths.network_reservation(100, "52:54:00:00:00:01"))
    assert not is_lease_path(paths.node("leases"))


def test_network_and_node_record_changes_wake_it(manager: NetManager) -> None:
    assert woken(manager, paths.network(100))
    assert woken(manager, paths.network_acl(100, "web"))
    assert woken(manager, paths.node("n2"))
    assert not woken(manager, paths.node_keepalive("n2"))
    assert not woken(manager, paths.domain("d1"))


def test_leases_wake_only_the_serving_primary_and_only_for_dns(manager: NetManager) -> None:
    lease = paths.network_lease(100, "52:54:00:00:00:01")
    assert not woken(manager, lease)
    manager._serving = True
    assert woken(manager, lease)
    assert (manager._dns_due, manager._full_due) == (True, False)
    assert woken(manager, paths.network(100))
    assert manager._full_due


def test_a_pass_thread_runs_at_start_on_wake_and_survives_a_failing_pass() -> None:
    import threading

    runs: list[int] = []
    ran = threading.Event()

    def run_pass() -> None:
        runs.append(len(runs))
        ran.set()
        if len(runs) == 1:
            raise RuntimeError("a bad pass")

    thread = PassThread("test", run_pass, interval=60.0)
    thread.start()
    assert ran.wait(5)
    ran.clear()
    thread.wake()
    assert ran.wait(5)  # the failure of the first pass did not end the thread
    thread.stop()
    assert runs == [0, 1]
