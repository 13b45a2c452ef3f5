"""The primary keeps its child services running: a service that exits is started again at
the next keepalive, and a failing check does not stop the others."""

from __future__ import annotations

import os
import signal

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


def test_a_failing_check_is_logged_and_the_others_still_run(caplog):
    def broken() -> str | None:
        raise OSError("no such program")

    phases = PrimaryPhases([Phase("broken", check=broken), Phase("fine", check=lambda: "acted")])
    assert phases.supervise() == ["acted"]
    assert any("phase broken" in record.getMessage() for record in caplog.records)
