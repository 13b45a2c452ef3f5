"""Node state changes clients may request: move the primary, flush a node or make it ready."""

from __future__ import annotations

from pvc.cluster.errors import ClusterError, Conflict, NotYetDone, WaitTimeout
from pvc.cluster.session import Cluster
from pvc.state import nodes, paths, settings
from pvc.state.records import NodeRecord
from pvc.state.states import CoordinatorState, DaemonState, DomainState


def _existing(cluster: Cluster, name: str) -> NodeRecord:
    """The node for a state change request; an unknown node is a bad request (400) there."""
    node = cluster.cache.node(name)
    if node is None:
        raise ClusterError(f"Node '{name}' does not exist")
    return node


def request_coordinator_state(cluster: Cluster, name: str, state: str) -> str:
    """Ask for ``name`` to become primary or secondary; returns the reply message."""
    node = _existing(cluster, name)
    if not node.is_coordinator:
        raise ClusterError(f"Node '{name}' is not a coordinator")
    if state == CoordinatorState.PRIMARY:
        if node.coordinator_state == CoordinatorState.PRIMARY:
            return f"Node '{name}' is already in primary state"
        if node.daemon_state != DaemonState.RUN or not node.present:
            raise ClusterError(f"Node '{name}' is not running (daemon state {node.daemon_state})")
        cluster.settle(settings.request_primary(cluster.store, name))
        return f"Setting node '{name}' to primary state"
    if node.coordinator_state != CoordinatorState.PRIMARY:
        return f"Node '{name}' is already in secondary state"
    others = [
        other.name
        for other in cluster.cache.nodes()
        if other.name != name
        and other.is_coordinator
        and other.present
        and other.daemon_state == DaemonState.RUN
    ]
    if not others:
        raise ClusterError(f"No other coordinator is running to take over from '{name}'")
    cluster.settle(settings.request_primary(cluster.store, others[0]))
    return f"Setting node '{name}' to secondary state; '{others[0]}' takes over as primary"


def request_domain_state(
    cluster: Cluster, name: str, state: str, *, wait: bool = False, timeout: float | None = None
) -> str:
    """Ask a node to flush its VMs away (``flush``) or accept VMs again (``ready``).

    With ``wait``, return once the node has finished (NotYetDone after ``timeout`` seconds,
    default DOMAIN_STATE_WAIT).
    """
    message = _request_domain_state(cluster, name, state)
    if not wait:
        return message
    timeout = DOMAIN_STATE_WAIT if timeout is None else timeout
    try:
        wait_for_domain_state(cluster, name, state, timeout)
    except WaitTimeout:
        raise NotYetDone(message, timeout, f"node '{name}' to {state}") from None
    return message + ": done"


def _request_domain_state(cluster: Cluster, name: str, state: str) -> str:
    node = _existing(cluster, name)
    if node.domain_state == DomainState.FENCE_FLUSH:
        raise Conflict(
            f"Node '{name}' is being fenced and its VMs recovered (fence-flush); "
            "it becomes flushed when that is done"
        )
    if state == "flush":
        if node.domain_state in (DomainState.FLUSH, DomainState.FLUSHED):
            return f"Node '{name}' is already flushed"
        cluster.settle(nodes.request_domain_state(cluster.store, name, DomainState.FLUSH))
        return f"Flushing node '{name}'"
    if node.domain_state in (DomainState.READY, DomainState.UNFLUSH):
        return f"Node '{name}' is already ready"
    cluster.settle(nodes.request_domain_state(cluster.store, name, DomainState.UNFLUSH))
    return f"Setting node '{name}' to ready"


#: How long ``wait`` on a flush or ready waits, in seconds.
DOMAIN_STATE_WAIT = 900.0


def wait_for_domain_state(
    cluster: Cluster, name: str, requested: str, timeout: float = DOMAIN_STATE_WAIT
) -> None:
    """Block until a node has finished a flush (``flushed``) or ready (``ready``)."""
    final = DomainState.FLUSHED if requested == "flush" else DomainState.READY
    path = paths.node_domain_state(name)
    if not cluster.cache.wait_until(
        lambda: cluster.cache.domain_state(name)[0] == final, timeout, under=path
    ):
        raise WaitTimeout(f"Node '{name}' did not reach domain state {final} within {timeout:g} s")
