"""Typed records of what PVC keeps in ZooKeeper, and their (de)serialisation.

Records are immutable snapshots. Values are stored as compact JSON, except single
state names, which are stored as plain UTF-8 strings so they read well in zkCli.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Self

from pvc.state.states import CoordinatorState, DaemonState, DomainState, NodeMode

#: The requested primary (``/config/primary_node``) while no coordinator is primary.
NO_PRIMARY = "none"


def encode(value: Any) -> bytes:
    """Serialise a record or a JSON-compatible value for a znode."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def decode_json(data: bytes | None) -> Any:
    """Parse a JSON znode value; empty or malformed data gives None."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def decode_text(data: bytes | None, default: str = "") -> str:
    """Read a plain-text znode value."""
    return data.decode(errors="replace") if data else default


class _Record:
    """Mixin: build a dataclass record from a JSON mapping, ignoring unknown keys."""

    @classmethod
    def from_mapping(cls, mapping: Any) -> Self | None:
        if not isinstance(mapping, dict):
            return None
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        try:
            return cls(**{k: v for k, v in mapping.items() if k in known})
        except TypeError:
            return None

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Self | None:
        return cls.from_mapping(decode_json(data))


@dataclass(frozen=True)
class NodeStatic(_Record):
    """What a node says about itself when its daemon registers."""

    name: str
    mode: str = NodeMode.HYPERVISOR
    cpu_count: int = 0
    kernel: str = ""
    os: str = ""
    arch: str = ""
    pvc_version: str = ""
    registered: float = 0.0
    #: How peers reach this node's libvirt, and where migration streams to it arrive.
    peer_uri: str = ""
    migration_uri: str = ""
    #: The entry of ``zookeeper.hosts`` that is this node's own ZooKeeper server ("" if none).
    zookeeper_member: str = ""
    #: The node's address on the cluster network (its BGP router id and VXLAN source).
    cluster_address: str = ""
    #: The node's address on the storage network (where its Ceph clients, e.g. QEMU, connect
    #: from: a fence breaks the disk locks held from it).
    storage_address: str = ""


@dataclass(frozen=True)
class Memory:
    """Host memory in MiB."""

    total: int = 0
    used: int = 0
    free: int = 0


@dataclass(frozen=True)
class Keepalive(_Record):
    """One keepalive: when it was sent and the host figures sampled with it."""

    timestamp: float
    load: float = 0.0
    memory: dict[str, int] = field(default_factory=dict)
    #: Hypervisor figures: running domains, and vCPUs/memory (MiB) given to running
    #: domains (allocated) and to every defined domain (provisioned).
    domains: list[str] = field(default_factory=list)
    vcpu_allocated: int = 0
    memory_allocated: int = 0
    memory_provisioned: int = 0
    #: Live figures of each running VM by UUID (see pvc.cluster.vm.shape.stats_view).
    vm_stats: dict[str, dict] = field(default_factory=dict)
    #: Node health, 0-100, as a health monitor measured it; None while nothing measures it.
    health: int | None = None
    #: Figures of the node's configured network devices by name (see pvc.node.netstats);
    #: None from a daemon that does not report them.
    interfaces: dict[str, dict] | None = None

    @property
    def memory_mib(self) -> Memory:
        return Memory(**{k: int(v) for k, v in self.memory.items() if k in ("total", "used", "free")})


@dataclass(frozen=True)
class NodeRecord:
    """Everything the cluster knows about one node, assembled from its znodes."""

    name: str
    static: NodeStatic
    daemon_state: str = DaemonState.INIT
    coordinator_state: str = CoordinatorState.CLIENT
    domain_state: str = DomainState.READY
    keepalive: Keepalive | None = None
    present: bool = False
    #: Data version of the daemon state, for compare-and-set changes.
    daemon_state_version: int = -1
    #: Data version of the keepalive: a peer declares the node dead only if it is unchanged.
    keepalive_version: int = -1
    #: zxid of the keepalive znode's last change (changes with every keepalive, and when the
    #: node registers afresh): what a peer watches to judge whether the node is alive.
    keepalive_zxid: int = -1

    @property
    def is_coordinator(self) -> bool:
        return self.static.mode == NodeMode.COORDINATOR


@dataclass(frozen=True)
class ClusterConfig:
    """Cluster-wide settings kept under /config."""

    primary_node: str = NO_PRIMARY
    maintenance: bool = False
    cluster_name: str = ""


def parse_bool(text: str) -> bool:
    """ZooKeeper booleans are stored as the strings 'true' and 'false'."""
    return text.strip().lower() in ("true", "yes", "1", "on")
