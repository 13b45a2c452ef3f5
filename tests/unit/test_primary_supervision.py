"""The primary keeps its child services running: a service that exits is started again at
the next keepalive, and a failing check does not stop the others."""

from __future__ import annotations

import os
import signal
import time

from pvc import processes
from pvc.node.phases import Phase, PrimaryPhases
from pvc.node.primary_services import ChildService
from tests.helpers import node_config, wait_for


def test_an_exited_service_is_started_again(tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))  # tests.sleeper importable
    config = node_config("hv1", ["hv1"], "127.0.0.1:2181", state_dir=str(tmp_path))
    service = ChildService(config, "sleeper", "tests.sleeper", "127.0.0.1", 9, wait=False)
    assert service.keep_running() is None  # never started: nothing to keep
    service.start()
    first = service.ref
    assert first is not None and processes.is_alive(first)
    phases = PrimaryPhases([Phase("sleeper", check=service.keep_running)])
    assert phases.supervise() == []
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: not processes.is_alive(first), 5)
    assert phases.supervise() == ["restarted sleeper, which had exited"]
    assert service.ref is not None and service.ref.pid != first.pid and processes.is_alive(service.ref)
    service.stop()
    assert not processes.is_alive(service.ref or first)


def test_a_killed_service_goes_at_once_with_its_children(tmp_path, monkeypatch):
    """A primary that must stop acting now does not wait for a server that is slow to stop."""
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    config = node_config("hv1", ["hv1"], "127.0.0.1:2181", state_dir=str(tmp_path))
    service = ChildService(config, "stubborn", "tests.stubborn", "127.0.0.1", 9, wait=False, stop_timeout=30)
    service.start()
    leader = service.ref
    assert leader is not None
    child_pid = int(wait_for(lambda: service.log_path.read_text().split() or None, 10)[0])
    child = processes.ProcessRef("child", child_pid, processes.start_time_of(child_pid) or 0)
    os.kill(leader.pid, signal.SIGTERM)  # ignored
    started = time.monotonic()
    service.kill()
    assert time.monotonic() - started < 2.0
    assert not processes.is_alive(leader)
    assert wait_for(lambda: not processes.is_alive(child), 5)
    assert not service.ref_path.exists()


def test_a_failing_check_is_logged_and_the_others_still_run(caplog):
    def broken() -> str | None:
        raise OSError("no such program")

    phases = PrimaryPhases([Phase("broken", check=broken), Phase("fine", check=lambda: "acted")])
    assert phases.supervise() == ["acted"]
    assert any("phase broken" in record.getMessage() for record in caplog.records)
