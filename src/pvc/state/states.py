"""State names of nodes and VMs, in one place."""

from __future__ import annotations

from enum import StrEnum


class NodeMode(StrEnum):
    """What a node is in the cluster."""

    COORDINATOR = "coordinator"
    HYPERVISOR = "hypervisor"


class DaemonState(StrEnum):
    """Life of a node daemon, as recorded in ZooKeeper."""

    INIT = "init"
    RUN = "run"
    SHUTDOWN = "shutdown"
    STOP = "stop"
    DEAD = "dead"
    FENCED = "fenced"


class CoordinatorState(StrEnum):
    """A node's role in primary-coordinator election."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    TAKEOVER = "takeover"
    RELINQUISH = "relinquish"
    CLIENT = "client"


class DomainState(StrEnum):
    """Whether a node accepts VMs."""

    READY = "ready"
    FLUSH = "flush"
    FLUSHED = "flushed"
    UNFLUSH = "unflush"
    #: Being fenced, then its VMs recovered elsewhere; it starts none meanwhile.
    FENCE_FLUSH = "fence-flush"


class VMState(StrEnum):
    """A VM's state: what clients ask for and, once its node has acted, what it is."""

    START = "start"
    RESTART = "restart"
    SHUTDOWN = "shutdown"
    STOP = "stop"
    DISABLE = "disable"
    FAIL = "fail"
    MIGRATE = "migrate"
    MIGRATE_LIVE = "migrate-live"
    PROVISION = "provision"
    MIRROR = "mirror"
    #: Being imported from an export (its volumes are being written); it is not started.
    IMPORT = "import"


#: States in which a VM's node moves it along when its assigned node changes.
VM_MIGRATING = frozenset({VMState.MIGRATE, VMState.MIGRATE_LIVE})
#: States in which a VM should be running on its assigned node.
VM_RUNNING = frozenset({VMState.START, VMState.RESTART}) | VM_MIGRATING
#: States that a client may ask for through /vm/{vm}/state.
VM_REQUESTABLE = (VMState.START, VMState.SHUTDOWN, VMState.STOP, VMState.RESTART, VMState.DISABLE)


class MigrationMethod(StrEnum):
    """How a VM leaves a node: live, by shutdown and start, or not at all ("none" = default)."""

    LIVE = "live"
    SHUTDOWN = "shutdown"
    NONE = "none"


class Selector(StrEnum):
    """How a target node is chosen for a VM."""

    MEM = "mem"
    MEMPROV = "memprov"
    VCPUS = "vcpus"
    LOAD = "load"
    VMS = "vms"
    NONE = "none"
