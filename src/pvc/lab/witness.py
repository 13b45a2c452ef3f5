"""Witnesses of what happens in the lab, for its tests and benches: where each guest's QEMU
runs (sampled all along), the guests' serial heartbeats, fence records, and which nodes hold
an address."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute

from pvc.config import read_credential_file
from pvc.lab import demo
from pvc.lab.guest import BOOT_MARKER, heartbeats
from pvc.lab.layout import LabLayout
from pvc.state.fencing import FenceRecord, read_fence
from pvc.state.store import Store


def qemu_by_guest() -> dict[str, list[int]]:
    """Every running QEMU of a lab guest: guest name -> PIDs (one /proc scan)."""
    found: dict[str, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or b"qemu-system" not in argv[0]:
            continue
        for arg in argv:
            if arg.startswith(b"guest="):
                found.setdefault(arg[6:].split(b",")[0].decode(), []).append(int(entry.name))
    return found


@dataclass(eq=False)  # a thread must stay hashable
class QemuWitness(threading.Thread):
    """Samples every 50 ms which QEMU processes run each guest; records the most at once
    and when each process was first and last seen."""

    guests: list[str]
    period: float = 0.05
    most: dict[str, int] = field(default_factory=dict)
    seen: dict[int, tuple[str, float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            now = time.monotonic()
            running = qemu_by_guest()
            for guest in self.guests:
                pids = running.get(guest, [])
                self.most[guest] = max(self.most.get(guest, 0), len(pids))
                for pid in pids:
                    first = self.seen.get(pid, (guest, now, now))[1]
                    self.seen[pid] = (guest, first, now)
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def lifetimes(self, guest: str) -> list[tuple[float, float]]:
        """(first seen, last seen) of each QEMU process of ``guest``, in start order."""
        return sorted((first, last) for name, first, last in self.seen.values() if name == guest)

    def overlaps(self, guest: str) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        """Pairs of QEMU processes of ``guest`` seen alive at the same time."""
        spans = self.lifetimes(guest)
        return [(a, b) for a, b in itertools.combinations(spans, 2) if b[0] <= a[1]]


@contextmanager
def watching(guests: list[str]) -> Iterator[QemuWitness]:
    witness = QemuWitness(list(guests))
    witness.start()
    try:
        yield witness
    finally:
        witness.stop()


def console(layout: LabLayout, guest: str) -> str:
    path = demo.serial_log(layout, guest)
    return path.read_text(errors="replace") if path.exists() else ""


def boots(layout: LabLayout, guest: str) -> int:
    return console(layout, guest).count(BOOT_MARKER)


def beating_since_boot(layout: LabLayout, guest: str, boot: int, beats: int = 3) -> bool:
    """Whether the guest's ``boot``-th boot (1 = first) has written ``beats`` heartbeats."""
    parts = console(layout, guest).split(BOOT_MARKER)
    return len(parts) > boot and len(heartbeats(parts[boot])) >= beats


@contextmanager
def lab_store(layout: LabLayout) -> Iterator[Store]:
    store = Store(
        ",".join(layout.zookeeper_hosts),
        timeout=5,
        credential=read_credential_file(layout.zookeeper_auth_file),
    )
    assert store.start(give_up_after=15)
    try:
        yield store
    finally:
        store.stop()


def fence_record(layout: LabLayout, node: str) -> FenceRecord | None:
    with lab_store(layout) as store:
        return read_fence(store, node)


#: Command-line markers of the processes only the primary may run.
PRIMARY_ONLY_PROCESSES = {"pvcapid": b"pvc.api.daemon"}


def processes_by_node(layout: LabLayout, markers: dict[str, bytes]) -> dict[str, list[str]]:
    """Which lab nodes run a process of each of ``markers`` (service name -> a bytes marker of
    its command line): a process belongs to the node whose network namespace it is in."""
    namespaces: dict[int, str] = {}
    for node in layout.node_names:
        try:
            namespaces[os.stat(f"/run/netns/{layout.netns(node)}").st_ino] = node
        except OSError:
            continue
    found: dict[str, list[str]] = {name: [] for name in markers}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes()
            node = namespaces.get(os.stat(Path(entry.path, "ns", "net")).st_ino)
        except OSError:
            continue
        if node is None:
            continue
        for name, marker in markers.items():
            if marker in argv and node not in found[name]:
                found[name].append(node)
    return found


class AddressWitness(threading.Thread):
    """Samples every ``period`` s which nodes hold each of ``addresses`` and run each of the
    primary-only processes; records every sample in which two nodes held one."""

    def __init__(self, layout: LabLayout, addresses: list[str], period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.layout, self.addresses, self.period = layout, addresses, period
        self.doubles: list[tuple[float, str, list[str]]] = []
        self.samples = 0
        watched = [*addresses, *PRIMARY_ONLY_PROCESSES]
        self.holders: dict[str, set[str]] = {name: set() for name in watched}
        self._halt = threading.Event()

    def run(self) -> None:
        sockets = {node: IPRoute(netns=self.layout.netns(node)) for node in self.layout.node_names}
        try:
            while not self._halt.is_set():
                held: dict[str, list[str]] = {a: [] for a in self.addresses}
                for node, ipr in sockets.items():
                    try:
                        present = {msg.get_attr("IFA_ADDRESS") for msg in ipr.get_addr(family=2)}
                    except OSError:
                        continue
                    for address in self.addresses:
                        if address in present:
                            held[address].append(node)
                held.update(processes_by_node(self.layout, PRIMARY_ONLY_PROCESSES))
                for name, nodes in held.items():
                    self.holders[name].update(nodes)
                    if len(nodes) > 1:
                        self.doubles.append((time.monotonic(), name, nodes))
                self.samples += 1
                self._halt.wait(self.period)
        finally:
            for ipr in sockets.values():
                ipr.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
