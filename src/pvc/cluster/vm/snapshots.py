"""VM snapshots: their names, what a VM must be for each action, and the VM view's list.

A VM snapshot is an RBD snapshot of every volume of the VM, taken at one point, and the
domain XML at that moment (records: :mod:`pvc.state.vm_snapshots`; creating, removing and
rolling back, as tasks: :mod:`pvc.cluster.vm.snapshot_tasks`).
"""

from __future__ import annotations

import difflib
import re
import time
from datetime import UTC, datetime

from pvc.cluster.errors import ClusterError
from pvc.cluster.session import Cluster
from pvc.cluster.vm.queries import resolve
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import rbd_volumes
from pvc.state.states import VMState
from pvc.state.vm_snapshots import VmSnapshot, read_snapshots
from pvc.state.vms import VmRecord

#: What a snapshot may be called: it names an RBD snapshot on each volume as well.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1-64 letters, digits, '.', '_' and '-', starting with a letter or digit"
#: States a VM may be rolled back in: its disks are not in use.
ROLLBACK_STATES = (VMState.STOP, VMState.DISABLE, VMState.MIRROR)


def default_name(now: float | None = None) -> str:
    """A snapshot name from the time (UTC), as ``YYYYMMDDhhmmss``."""
    return datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y%m%d%H%M%S")


def check_name(name: object, error: type[Exception] = ClusterError) -> str:
    """``name`` if it may name a snapshot, else ``error``."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise error(f"Snapshot name {name!r} is invalid: {NAME_RULE}")
    return name


def rbd_disks(record: VmRecord, error: type[Exception] = ClusterError) -> list[tuple[str, str]]:
    """``(pool, volume)`` of each RBD disk of the VM; ``error`` when it has none."""
    try:
        disks = rbd_volumes(record.xml)
    except DomainXMLError as problem:
        raise error(f"VM '{record.meta.name}': {problem}") from None
    if not disks:
        raise error(f"VM '{record.meta.name}' has no RBD disks: there is nothing to snapshot")
    return disks


# -- the VM view's list ----------------------------------------------------------------------


def age(seconds: float) -> str:
    """A short age: ``45s``, ``12m``, ``3h5m``, ``2d4h``."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{secs}s"


def xml_diff_lines(snapshot_xml: str, current_xml: str) -> list[str]:
    """How the VM's XML differs now from the snapshot's (a unified diff, without headers)."""
    diff = difflib.unified_diff(snapshot_xml.splitlines(), current_xml.splitlines(), lineterm="", n=1)
    return [line for line in diff if not line.startswith(("---", "+++"))]


def snapshot_view(snapshot: VmSnapshot, current_xml: str) -> dict:
    """One element of the v1 ``snapshots`` list, without its ``age`` (it changes with time)."""
    return {
        "name": snapshot.name,
        "timestamp": str(int(snapshot.timestamp)),
        "rbd_snapshots": list(snapshot.rbd_snapshots),
        "xml_diff_lines": xml_diff_lines(snapshot.xml, current_xml),
    }


def complete_snapshots(reader, children, record: VmRecord) -> list[VmSnapshot]:
    """The VM's finished snapshots, oldest first (one still being made is not listed)."""
    return [snap for snap in read_snapshots(reader, children, record.uuid) if snap.complete]


def list_snapshots(cluster: Cluster, vm: str) -> list[dict]:
    """The VM's snapshots in the v1 shape, oldest first."""
    record = resolve(cluster, vm)
    now = time.time()
    snaps = complete_snapshots(cluster.cache.data, cluster.cache.children, record)
    return [{**snapshot_view(snap, record.xml), "age": age(now - snap.timestamp)} for snap in snaps]
