"""What a lab has created (``lab.json``), and which processes each of its nodes runs.

Several processes write ``lab.json``: ``pvc-lab`` commands, and a BMC's power hook that
starts a node's services again. Each change is a read-modify-write under an exclusive
``flock`` on the lab's lock file (:meth:`LabState.update`), so none loses another's.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pvc import processes
from pvc.lab import cluster_ceph
from pvc.lab.layout import LabLayout
from pvc.processes import ProcessRef

ROLES = ("anchor", "libvirtd", "zookeeper", "patroni", "ceph-mon", "ceph-mgr", "pvcnoded")


@contextlib.contextmanager
def locked(layout: LabLayout) -> Iterator[None]:
    """Hold the lab's lock file (exclusive ``flock``) for the duration."""
    layout.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class LabState:
    """What a lab has created; persisted in lab.json."""

    layout: LabLayout
    processes: dict[str, ProcessRef] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    started: float = 0.0
    #: Nodes cut off the network (their bridge-side link is down).
    partitions: list[str] = field(default_factory=list)

    def _write(self) -> None:
        data = {
            "layout": self.layout.to_json(),
            "processes": {key: ref.to_json() for key, ref in self.processes.items()},
            "namespaces": self.namespaces,
            "links": self.links,
            "started": self.started,
            "partitions": self.partitions,
        }
        self.layout.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.layout.state_file)

    def save(self) -> None:
        """Write the whole state (only its creator, ``up``, writes it whole)."""
        with locked(self.layout):
            self._write()

    def update(self, change: Callable[[LabState], None]) -> None:
        """Apply ``change`` to the state on disk and to this object, under the lab's lock."""
        with locked(self.layout):
            current = LabState.load(self.layout.directory) or self
            change(current)
            current._write()
        change(self)

    def record(self, ref: ProcessRef) -> None:
        """Record a process started for the lab (``<node>/<role>``)."""
        self.update(lambda state: state.processes.__setitem__(ref.name, ref))

    def set_partitioned(self, node: str, partitioned: bool) -> None:
        """Record that ``node`` is cut off (or no longer)."""

        def change(state: LabState) -> None:
            others = [name for name in state.partitions if name != node]
            state.partitions = [*others, node] if partitioned else others

        self.update(change)

    @classmethod
    def load(cls, directory: Path) -> LabState | None:
        try:
            data = json.loads((directory / "lab.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(
            layout=LabLayout.from_json(data["layout"]),
            processes={k: ProcessRef.from_json(v) for k, v in data["processes"].items()},
            namespaces=list(data["namespaces"]),
            links=list(data["links"]),
            started=data.get("started", 0.0),
            partitions=list(data.get("partitions", [])),
        )

    def ref(self, node: str, role: str) -> ProcessRef | None:
        return self.processes.get(f"{node}/{role}")

    def alive(self) -> dict[str, bool]:
        return {key: processes.is_alive(ref) for key, ref in self.processes.items()}


def node_roles(layout: LabLayout, node: str) -> list[str]:
    """The lab processes of ``node``, in :data:`ROLES` order: the anchor, libvirtd, and the
    node daemon everywhere; ZooKeeper, a database member and a Ceph monitor on coordinators;
    the manager on the first coordinator (no Ceph daemons in a lab without Ceph, no database
    members in one without a database)."""
    coordinator = node in layout.coordinator_names
    runs = {
        "anchor": True,
        "libvirtd": True,
        "zookeeper": coordinator,
        "patroni": coordinator and layout.database,
        "ceph-mon": layout.ceph and node in cluster_ceph.mon_nodes(layout),
        "ceph-mgr": layout.ceph and node == cluster_ceph.mgr_node(layout),
        "pvcnoded": True,
    }
    return [role for role in ROLES if runs[role]]
