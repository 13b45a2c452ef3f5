"""A process counts as alive until its last thread is gone, not only its main thread."""

from __future__ import annotations

import sys
import time

from pvc import processes
from tests.helpers import wait_for

#: The main thread exits at once (pthread_exit); another thread runs on for a while.
LINGERING = """
import ctypes, threading, time
threading.Thread(target=lambda: time.sleep(1.5)).start()
time.sleep(0.2)
ctypes.CDLL(None).pthread_exit(None)
"""


def test_a_process_whose_main_thread_exited_is_alive_while_other_threads_run(tmp_path):
    ref = processes.spawn("lingering", [sys.executable, "-c", LINGERING], tmp_path / "log")
    began = time.monotonic()
    wait_for(lambda: processes._stat_fields(ref.pid)[0] == "Z", timeout=5, interval=0.01)
    assert processes.is_alive(ref)  # its main thread is a zombie, its other thread runs
    assert processes.wait_gone([ref], 10) == []
    assert time.monotonic() - began > 1.2  # gone only once the other thread ended


def test_an_exited_process_is_not_alive(tmp_path):
    ref = processes.spawn("short", [sys.executable, "-c", "pass"], tmp_path / "log")
    assert processes.wait_gone([ref], 10) == []
    assert not processes.is_alive(ref)
