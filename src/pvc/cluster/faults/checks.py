"""The faults the primary coordinator raises itself, found from the cluster's records.

:func:`find` is pure (records in, findings out); :func:`raise_found` writes them. The
primary's daemon runs both after each keepalive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pvc.cluster.faults.actions import clear, report
from pvc.cluster.session import Cluster
from pvc.cluster.vm.placement import overprovisioned
from pvc.db import members as database_members
from pvc.state.members import MemberHealth
from pvc.state.records import NodeRecord
from pvc.state.states import DaemonState, VMState
from pvc.state.store import Store
from pvc.state.vms import VmRecord

#: Health deltas of the faults PVC raises itself.
DELTA_DEAD_NODE = 50
DELTA_DAEMON_NOT_RUNNING = 25
DELTA_VM_FAILED = 10
DELTA_MEMORY_OVERPROVISIONED = 25
DELTA_API_AUTH_DISABLED = 10
DELTA_ZOOKEEPER_MEMBER = 25
DELTA_DATABASE_UNAVAILABLE = 25
DELTA_DATABASE_MEMBER = 10
#: The fault raised while the primary's API runs without authentication.
API_AUTH_DISABLED = ("api_auth_disabled", "api")
#: The kind of the fault about a ZooKeeper member that does not answer (subject: its host entry).
ZOOKEEPER_MEMBER_DOWN = "zookeeper_member_down"
#: The fault while the provisioner database has no running leader, and the one of a
#: coordinator whose database member is not running (subject: the node).
DATABASE_UNAVAILABLE = ("database_unavailable", "database")
DATABASE_MEMBER_DOWN = "database_member_down"


@dataclass(frozen=True)
class DatabaseView:
    """The provisioner database as Patroni's records show it: each member's state by name
    (members are named after their nodes) and the leader's name (None: no leader)."""

    states: dict[str, str]
    leader: str | None

    def running(self) -> set[str]:
        return {name for name, state in self.states.items() if state == "running"}


@dataclass(frozen=True)
class Finding:
    """A condition that is a fault: its kind and subject (which make its id), delta, message."""

    kind: str
    subject: str
    delta: int
    message: str


def find(nodes: Iterable[NodeRecord], vms: Iterable[VmRecord], dead_after: float) -> list[Finding]:
    """Dead or stopped nodes, failed VMs, and memory that would not fit if a node were lost."""
    nodes, vms = list(nodes), list(vms)
    found = []
    for node in nodes:
        if node.daemon_state == DaemonState.DEAD:
            message = f"Node {node.name} is dead: no keepalive for over {dead_after:g} s"
            found.append(Finding("dead_node", node.name, DELTA_DEAD_NODE, message))
        elif node.daemon_state in (DaemonState.STOP, DaemonState.SHUTDOWN):
            message = f"Node {node.name}'s daemon is not running (state {node.daemon_state})"
            found.append(Finding("daemon_not_running", node.name, DELTA_DAEMON_NOT_RUNNING, message))
    for vm in vms:
        if vm.placement.state == VMState.FAIL:
            message = f"VM {vm.meta.name} failed: {vm.placement.failed_reason}"
            found.append(Finding("vm_failed", vm.uuid, DELTA_VM_FAILED, message))
    over = overprovisioned(nodes, vms)
    if over is not None:
        message = (
            f"VMs are provisioned {over[0]} MiB of memory but the cluster less its largest node "
            f"has {over[1]} MiB: losing a node would leave VMs without memory"
        )
        found.append(Finding("memory_overprovisioned", "cluster", DELTA_MEMORY_OVERPROVISIONED, message))
    return found


def api_findings(api_authentication: bool) -> list[Finding]:
    """A fault while the primary's API answers without asking for a key."""
    if api_authentication:
        return []
    message = (
        "The API accepts requests without an API key (api.authentication.enabled is false "
        "on the primary): anyone who reaches it controls the cluster"
    )
    return [Finding(*API_AUTH_DISABLED, DELTA_API_AUTH_DISABLED, message)]


def zookeeper_findings(health: Iterable[MemberHealth], nodes: Iterable[NodeRecord]) -> list[Finding]:
    """A fault for every ZooKeeper member that does not answer, naming its coordinator when
    one registered the member as its own."""
    owners = {node.static.zookeeper_member: node.name for node in nodes if node.static.zookeeper_member}
    found = []
    for member in health:
        if member.answering is False:
            owner = f" (on {owners[member.host]})" if member.host in owners else ""
            message = f"ZooKeeper member {member.host}{owner} does not answer: {member.detail}"
            found.append(Finding(ZOOKEEPER_MEMBER_DOWN, member.host, DELTA_ZOOKEEPER_MEMBER, message))
    return found


def database_view(store: Store, scope: str) -> DatabaseView:
    """The database cluster ``scope`` (the PVC cluster's name) as Patroni recorded it."""
    found = database_members.members(store, scope)
    return DatabaseView({m.name: m.state for m in found}, database_members.leader(store, scope))


def database_findings(view: DatabaseView, nodes: Iterable[NodeRecord]) -> list[Finding]:
    """A fault while no running member leads, and one for each coordinator whose member
    is not running."""
    running = view.running()
    found = []
    if view.leader is None or view.leader not in running:
        why = (
            "no member holds the leader key"
            if view.leader is None
            else f"its leader {view.leader} is not running"
        )
        message = f"The provisioner database is unavailable: {why}"
        found.append(Finding(*DATABASE_UNAVAILABLE, DELTA_DATABASE_UNAVAILABLE, message))
    for node in nodes:
        if node.is_coordinator and node.name not in running:
            state = view.states.get(node.name, "not registered")
            message = f"The database member on coordinator {node.name} is not running ({state})"
            found.append(Finding(DATABASE_MEMBER_DOWN, node.name, DELTA_DATABASE_MEMBER, message))
    return found


def raise_found(
    cluster: Cluster,
    dead_after: float,
    *,
    api_authentication: bool = True,
    zookeeper: Sequence[MemberHealth] | None = None,
    database: DatabaseView | None = None,
) -> list[str]:
    """Raise or refresh a fault for every finding; returns a sentence per fault newly raised
    or cleared.

    ``api_authentication`` is the primary's ``api.authentication.enabled``; the fault it
    raises when false is deleted once it is true again. ``zookeeper`` is the latest word on
    each ensemble member (None: not known, nothing changes); the fault of a member that
    answers again is deleted. ``database`` is the provisioner database's members (None: it
    is off, or not known); its faults are deleted once they no longer hold. In maintenance
    mode new faults are not raised.
    """
    cache = cluster.cache
    maintenance = cache.cluster_config().maintenance
    done = []
    if api_authentication:
        cleared = clear(cluster, *API_AUTH_DISABLED)
        if cleared:
            done.append(cleared)
    for member in zookeeper or ():
        if member.answering:
            cleared = clear(cluster, ZOOKEEPER_MEMBER_DOWN, member.host)
            if cleared:
                done.append(cleared)
    nodes = cache.nodes()
    database_found = database_findings(database, nodes) if database is not None else []
    if database is not None:
        held = {(f.kind, f.subject) for f in database_found}
        candidates = [DATABASE_UNAVAILABLE] + [
            (DATABASE_MEMBER_DOWN, n.name) for n in nodes if n.is_coordinator
        ]
        for kind, subject in candidates:
            if (kind, subject) not in held:
                cleared = clear(cluster, kind, subject)
                if cleared:
                    done.append(cleared)
    findings = (
        find(nodes, cache.vms(), dead_after)
        + api_findings(api_authentication)
        + zookeeper_findings(zookeeper or (), nodes)
        + database_found
    )
    for finding in findings:
        sentence = report(
            cluster, finding.kind, finding.subject, finding.delta, finding.message, maintenance=maintenance
        )
        if sentence:
            done.append(sentence)
    return done
