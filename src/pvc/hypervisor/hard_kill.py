"""Killing a VM's QEMU process outright, without libvirt.

libvirt's destroy sends SIGTERM first and waits for QEMU to exit before it sends SIGKILL;
a QEMU whose disks are on storage it can no longer reach (a node cut off the network)
can take many seconds to go. A node that fences itself must have its VMs stopped within a
bound, so it kills their QEMU processes itself: those of this host (its network
namespace) whose command line carries the VM's UUID.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

PROC = Path("/proc")


def _netns(pid: int | str) -> int | None:
    try:
        return os.stat(PROC / str(pid) / "ns" / "net").st_ino
    except OSError:
        return None


def qemu_pids(uuids: set[str] | None, proc: Path = PROC) -> dict[str, list[int]]:
    """The QEMU processes of this host running each of ``uuids`` (by ``-uuid`` argument;
    every VM's with None)."""
    own = _netns("self") if proc == PROC else None
    found: dict[str, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or b"qemu" not in Path(argv[0].decode(errors="replace")).name.encode():
            continue
        if own is not None and _netns(entry.name) != own:
            continue  # another host's (the lab runs several nodes on one machine)
        for index, arg in enumerate(argv[:-1]):
            uuid = argv[index + 1].decode(errors="replace")
            if arg == b"-uuid" and (uuids is None or uuid in uuids):
                found.setdefault(uuid, []).append(int(entry.name))
    return found


def kill_all() -> dict[str, list[int]]:
    """SIGKILL every VM's QEMU process on this host (libvirt cannot be asked)."""
    return kill_now(None)


def kill_now(uuids: set[str] | None) -> dict[str, list[int]]:
    """SIGKILL the QEMU processes of ``uuids`` (all with None) on this host; the PIDs
    killed, by UUID."""
    killed: dict[str, list[int]] = {}
    for uuid, pids in qemu_pids(uuids).items():
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.setdefault(uuid, []).append(pid)
    return killed
