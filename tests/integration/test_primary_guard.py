"""The primary guard: a process apart from the daemon that removes the primary's services
when the daemon stops renewing its local lease (a frozen daemon), and only then."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import yaml

from pvc import processes
from pvc.config import parse_config
from pvc.node.primary_guard import LocalLease, read_lease, write_lease
from tests.helpers import node_config_data, wait_for

LEASE = 0.6


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node config on disk (the guard reads it), and a stand-in for its API process."""
    data = node_config_data("n1", ["n1"], "127.0.0.1:2181", state_dir=str(tmp_path / "state"))
    path = tmp_path / "pvc.conf"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("PVC_CONFIG_FILE", str(path))
    config = parse_config(data)
    api = processes.spawn("pvcapid", ["sleep", "600"], tmp_path / "api.log")
    (config.paths.state_dir).mkdir(parents=True, exist_ok=True)
    (config.paths.state_dir / "pvcapid.json").write_text(json.dumps(api.to_json()))
    lease = LocalLease(config, LEASE)
    yield lease, api
    lease.end()
    processes.terminate([api], 5)


def test_a_renewed_lease_keeps_everything_and_a_release_ends_the_guard(node):
    lease, api = node
    lease.begin()
    assert lease.guard is not None and processes.is_alive(lease.guard)
    for _ in range(10):  # 2 s, three lease lengths, renewed all along
        time.sleep(0.2)
        assert lease.renew(time.monotonic())
    assert processes.is_alive(api) and lease.path.exists()
    guard = lease.guard
    lease.end()
    assert not lease.path.exists()
    assert processes.wait_gone([guard], 5) == []
    assert processes.is_alive(api)


def test_a_lease_left_to_run_out_is_enforced_by_the_guard(node):
    lease, api = node
    lease.begin()
    began = time.monotonic()
    # The daemon freezes: no renewal. The guard stops the API and revokes the lease.
    wait_for(lambda: not processes.is_alive(api), timeout=10)
    took = time.monotonic() - began
    # not before the lease ran out; after it, as soon as the guard (a new Python process,
    # slow to start on a loaded machine) has started and looked
    assert LEASE <= took < LEASE + 3.0, took
    assert read_lease(lease.path) is None
    assert processes.wait_gone([lease.guard], 5) == []
    # The daemon wakes up: its renewal fails, which makes it step down.
    assert not lease.renew(time.monotonic())
    # ... also when its write raced the revocation (the lease file is there again)
    write_lease(lease.path, time.monotonic() + 60)
    assert not lease.renew(time.monotonic()) and not lease.path.exists()


def test_the_guard_is_not_stopped_with_the_daemon(node):
    """A SIGSTOP of the daemon does not reach the guard: it is a process of its own session."""
    lease, api = node
    lease.begin()
    assert os.getsid(lease.guard.pid) != os.getsid(0)
    status = subprocess.run(["ps", "-o", "stat=", "-p", str(lease.guard.pid)], capture_output=True, text=True)
    assert "T" not in status.stdout
    wait_for(lambda: not processes.is_alive(api), timeout=10)


def test_a_guard_that_died_is_started_again_at_the_next_renewal(node):
    lease, api = node
    lease.begin()
    first = lease.guard
    processes.terminate([first], 5)
    assert lease.renew(time.monotonic())
    assert lease.guard is not None and lease.guard.pid != first.pid and processes.is_alive(lease.guard)
    # ... and it enforces the lease as the first would have.
    wait_for(lambda: not processes.is_alive(api), timeout=10)
