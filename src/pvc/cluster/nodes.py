"""Nodes: their API representation and the state changes clients may request."""

from __future__ import annotations

import re
import time

from pvc.cluster.errors import ClusterError, NotFoundError, WaitTimeout
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.records import NodeRecord
from pvc.state.states import CoordinatorState, DaemonState, DomainState
from pvc.state.store import Store


def to_api(node: NodeRecord) -> dict:
    """A node in the PVC v1 shape."""
    memory = node.keepalive.memory_mib if node.keepalive else None
    keepalive = node.keepalive
    return {
        "name": node.name,
        "daemon_state": node.daemon_state,
        "coordinator_state": node.coordinator_state,
        "domain_state": node.domain_state,
        "pvc_version": node.static.pvc_version,
        "cpu_count": node.static.cpu_count,
        "kernel": node.static.kernel,
        "os": node.static.os,
        "arch": node.static.arch,
        "health": 100,
        "health_plugins": [],
        "health_details": [],
        "load": node.keepalive.load if node.keepalive else 0.0,
        "domains_count": len(keepalive.domains) if keepalive else 0,
        "running_domains": list(keepalive.domains) if keepalive else [],
        "vcpu": {"total": node.static.cpu_count, "allocated": keepalive.vcpu_allocated if keepalive else 0},
        "memory": {
            "total": memory.total if memory else 0,
            "used": memory.used if memory else 0,
            "free": memory.free if memory else 0,
            "allocated": keepalive.memory_allocated if keepalive else 0,
            "provisioned": keepalive.memory_provisioned if keepalive else 0,
        },
        "interfaces": {},
        "last_keepalive": node.keepalive.timestamp if node.keepalive else None,
    }


def list_nodes(
    cache: ClusterCache,
    *,
    limit: str | None = None,
    daemon_state: str | None = None,
    coordinator_state: str | None = None,
    domain_state: str | None = None,
) -> list[NodeRecord]:
    """Nodes filtered like PVC: ``limit`` is a regular expression matched against the whole
    name, with an implied ``.*`` on each side that is not anchored by ``^`` or ``$``."""
    pattern = limit_pattern(limit) if limit else None
    result = []
    for node in cache.nodes():
        if pattern and not pattern.fullmatch(node.name):
            continue
        if daemon_state and node.daemon_state != daemon_state:
            continue
        if coordinator_state and node.coordinator_state != coordinator_state:
            continue
        if domain_state and node.domain_state != domain_state:
            continue
        result.append(node)
    return result


def limit_pattern(limit: str) -> re.Pattern[str]:
    core = limit
    core = core[1:] if core.startswith("^") else ".*" + core
    core = core[:-1] if core.endswith("$") else core + ".*"
    try:
        return re.compile(core)
    except re.error as error:
        raise ClusterError(f"limit '{limit}' is not a valid regular expression: {error}") from None


def get_node(cache: ClusterCache, name: str) -> NodeRecord:
    node = cache.node(name)
    if node is None:
        raise NotFoundError(f"Node '{name}' not found")
    return node


def _existing(cache: ClusterCache, name: str) -> NodeRecord:
    """The node for a state change request; an unknown node is a bad request (400) there."""
    node = cache.node(name)
    if node is None:
        raise ClusterError(f"Node '{name}' does not exist")
    return node


def request_coordinator_state(store: Store, cache: ClusterCache, name: str, state: str) -> str:
    """Ask for ``name`` to become primary or secondary; returns the reply message."""
    node = _existing(cache, name)
    if not node.is_coordinator:
        raise ClusterError(f"Node '{name}' is not a coordinator")
    if state == CoordinatorState.PRIMARY:
        if node.coordinator_state == CoordinatorState.PRIMARY:
            return f"Node '{name}' is already in primary state"
        if node.daemon_state != DaemonState.RUN or not node.present:
            raise ClusterError(f"Node '{name}' is not running (daemon state {node.daemon_state})")
        store.set(paths.PRIMARY_NODE, name)
        return f"Setting node '{name}' to primary state"
    if node.coordinator_state != CoordinatorState.PRIMARY:
        return f"Node '{name}' is already in secondary state"
    others = [
        other.name
        for other in cache.nodes()
        if other.name != name
        and other.is_coordinator
        and other.present
        and other.daemon_state == DaemonState.RUN
    ]
    if not others:
        raise ClusterError(f"No other coordinator is running to take over from '{name}'")
    store.set(paths.PRIMARY_NODE, others[0])
    return f"Setting node '{name}' to secondary state; '{others[0]}' takes over as primary"


def request_domain_state(store: Store, cache: ClusterCache, name: str, state: str) -> str:
    """Ask a node to flush its VMs away (``flush``) or accept VMs again (``ready``)."""
    node = _existing(cache, name)
    if state == "flush":
        if node.domain_state in (DomainState.FLUSH, DomainState.FLUSHED):
            return f"Node '{name}' is already flushed"
        store.set(paths.node_domain_state(name), DomainState.FLUSH.value)
        return f"Flushing node '{name}'"
    if node.domain_state in (DomainState.READY, DomainState.UNFLUSH):
        return f"Node '{name}' is already ready"
    store.set(paths.node_domain_state(name), DomainState.UNFLUSH.value)
    return f"Setting node '{name}' to ready"


#: How long ``wait`` on a flush or ready waits, in seconds.
DOMAIN_STATE_WAIT = 900.0


def wait_for_domain_state(
    cache: ClusterCache, name: str, requested: str, timeout: float = DOMAIN_STATE_WAIT
) -> None:
    """Block until a node has finished a flush (``flushed``) or ready (``ready``)."""
    final = DomainState.FLUSHED if requested == "flush" else DomainState.READY
    deadline = time.monotonic() + timeout
    while cache.text(paths.node_domain_state(name)) != final:
        if time.monotonic() > deadline:
            raise WaitTimeout(f"Node '{name}' did not reach domain state {final} within {timeout:g} s")
        time.sleep(0.05)
