"""What a node daemon offers the tasks it runs, besides its ZooKeeper store.

The node daemon builds one :class:`NodeServices` and hands it to its task workers; a task
reaches it as ``ctx.services`` and asks for what it needs through the ``need_*``
functions, which fail the task with a clear message on a node that lacks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess
from pvc.config.backup import BackupSection
from pvc.domain_xml.policy import XmlPolicy
from pvc.hypervisor.adapter import Hypervisor
from pvc.storage.osd_keeper import OsdKeeper
from pvc.tasks import TaskContext, TaskError


@dataclass(frozen=True)
class NodeServices:
    """The node's libvirt connection, Ceph client and OSD keeper (None where it has none),
    and its view of the cluster (the daemon's watched cache, for domain functions)."""

    hypervisor: Hypervisor | None = None
    storage: StorageAccess | None = None
    osds: OsdKeeper | None = None
    #: The node's allowlist settings for VM definitions (see pvc.cluster.vm.xml_policy).
    xml_policy: XmlPolicy | None = None
    cluster: Cluster | None = None
    #: Where VM snapshots may be exported and imported on this node, and its schedules.
    backup: BackupSection = field(default_factory=BackupSection)


NodeTaskContext = TaskContext[NodeServices]


def _services(ctx: NodeTaskContext) -> NodeServices:
    return ctx.services if isinstance(ctx.services, NodeServices) else NodeServices()


def node_backup(ctx: NodeTaskContext) -> BackupSection:
    """The node's backup section (the defaults on a node given none)."""
    return _services(ctx).backup


def need_hypervisor(ctx: NodeTaskContext) -> Hypervisor:
    """The node's libvirt connection; TaskError on a node without a hypervisor."""
    hypervisor = _services(ctx).hypervisor
    if hypervisor is None:
        raise TaskError(f"node {ctx.run_on} offers no hypervisor to its tasks")
    return hypervisor


def _no_storage(ctx: NodeTaskContext) -> TaskError:
    return TaskError(f"node {ctx.run_on} has no Ceph storage configured (storage.ceph_conf)")


def need_storage(ctx: NodeTaskContext) -> StorageAccess:
    """The node's Ceph client; TaskError on a node without Ceph configured."""
    storage = _services(ctx).storage
    if storage is None:
        raise _no_storage(ctx)
    return storage


def need_osds(ctx: NodeTaskContext) -> tuple[StorageAccess, OsdKeeper]:
    """The node's Ceph client and OSD keeper; TaskError on a node without Ceph configured."""
    keeper = _services(ctx).osds
    if keeper is None:
        raise _no_storage(ctx)
    return need_storage(ctx), keeper


def need_cluster(ctx: NodeTaskContext) -> Cluster:
    """The node daemon's cluster view (store and cache); TaskError where none was given."""
    cluster = _services(ctx).cluster
    if cluster is None:
        raise TaskError(f"node {ctx.run_on} offers no cluster view to its tasks")
    return cluster


def node_xml_policy(ctx: NodeTaskContext, *, admin: bool = True) -> XmlPolicy:
    """The node's allowlist settings, as admin (or not: for XML no role has vouched for);
    the strictest settings when it gave none."""
    policy = _services(ctx).xml_policy or XmlPolicy()
    return policy.as_admin() if admin else policy.as_role(False)
