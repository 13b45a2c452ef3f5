"""The node's file-backed OSD daemons: created, started and stopped from one long-lived thread.

File-backed BlueStore OSDs are the lab's device type (production OSDs on block devices
are created by ``ceph-volume`` and run under the init system). Their daemons are
children of the node daemon and get its death signal, so a node that dies takes its
OSDs with it, as a real server would. The kernel ties that signal to the *thread* that
started the child, so every start happens on the keeper's own thread (see
:func:`pvc.storage.daemons.start_daemon`); callers hand work to it with :meth:`call`.

At start the node daemon starts the OSDs recorded for its node (:meth:`start_osd`), and
its OSD tasks create, stop and forget OSDs through the keeper.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from pvc import processes
from pvc.processes import ProcessRef
from pvc.storage import daemons
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError

log = logging.getLogger("pvc.node")
T = TypeVar("T")


class OsdKeeper:
    """Runs this node's file-backed OSDs; data in ``data_dir/osd.<id>``, logs in ``log_dir``.

    ``conf_path`` is the node's ceph.conf; ``connect`` gives the node's (connected) Ceph client.
    """

    def __init__(
        self, conf_path: str, connect: Callable[[], CephClient], data_dir: Path, log_dir: Path
    ) -> None:
        self.conf_path = conf_path
        self.connect = connect
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.processes: dict[int, ProcessRef] = {}
        self._work: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the keeper thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="osd-keeper", daemon=True)
            self._thread.start()

    def stop(self, grace: float = 15.0) -> None:
        """Stop our OSD daemons and the keeper thread."""
        running = [ref for ref in self.processes.values() if processes.is_alive(ref)]
        if running:
            daemons.stop(running, grace)
        self.processes.clear()
        if self._thread is not None:
            self._work.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            function, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as error:  # handed to the caller
                future.set_exception(error)

    def call(self, function: Callable[[], T], timeout: float = 600.0) -> T:
        """Run ``function`` on the keeper thread and return its result (or raise its error)."""
        if self._thread is None:
            raise StorageError("the OSD keeper is not running")
        future: Future = Future()
        self._work.put((function, future))
        return future.result(timeout)

    # --- OSD daemons ------------------------------------------------------------------------

    def create_file_osd(self, *, osd_id: int | None = None, db_size: int | None = None) -> daemons.OsdProcess:
        """Register, format and start a new file-backed OSD (reusing ``osd_id`` if given; with a
        dedicated DB device of ``db_size`` bytes if given)."""

        def create() -> daemons.OsdProcess:
            osd = daemons.create_file_osd(
                self.conf_path,
                self.data_dir,
                client=self.connect(),
                log_dir=self.log_dir,
                die_with_parent=True,
                osd_id=osd_id,
                db_size=db_size,
            )
            self.processes[osd.osd_id] = osd.process
            return osd

        return self.call(create)

    def running(self, osd_id: int) -> bool:
        """True if the OSD's daemon (ours, or one found by its pid file) is alive."""
        ref = self.processes.get(osd_id)
        if ref is not None and processes.is_alive(ref):
            return True
        pid_path = daemons.pid_file(self.conf_path, f"osd.{osd_id}")
        found = daemons.process_from_pid_file(pid_path, self.conf_path) if pid_path else None
        return found is not None and processes.is_alive(found)

    def start_osd(self, osd_id: int) -> bool:
        """Start an existing OSD's daemon unless it runs; True if started now."""
        if self.running(osd_id):
            return False

        def start() -> None:
            self.processes[osd_id] = daemons.start_osd(
                self.conf_path, osd_id, self.data_dir, self.log_dir, die_with_parent=True
            )

        self.call(start)
        return True

    def stop_osd(self, osd_id: int, grace: float = 15.0) -> None:
        """Stop an OSD's daemon if it runs."""
        ref = self.processes.pop(osd_id, None)
        if ref is None:
            pid_path = daemons.pid_file(self.conf_path, f"osd.{osd_id}")
            ref = daemons.process_from_pid_file(pid_path, self.conf_path) if pid_path else None
        if ref is not None:
            daemons.stop([ref], grace)

    def process(self, osd_id: int) -> ProcessRef | None:
        """Our process of an OSD, if we started it."""
        return self.processes.get(osd_id)

    def forget(self, osd_id: int) -> None:
        """Drop our record of an OSD's process (it was removed)."""
        self.processes.pop(osd_id, None)
