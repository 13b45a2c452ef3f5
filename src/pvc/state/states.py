"""State names of nodes, in one place."""

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
