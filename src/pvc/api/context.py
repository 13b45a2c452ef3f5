"""What request handlers work with: the cluster handle, the API settings and the node's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app, g

from pvc.api.routes import ADMIN
from pvc.api.sessions import LoginLimiter, SessionStore
from pvc.api.waiting import WaitGate
from pvc.cluster.network.rules import RuleChecker
from pvc.cluster.network.validation import Subnet
from pvc.cluster.provisioner.session import Database, DatabaseUnavailable
from pvc.cluster.session import Cluster
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.storage.actions import StorageOps
from pvc.cluster.vm.listing import VmListing
from pvc.cluster.vm.xml_policy import XmlPolicy
from pvc.config import ApiSection
from pvc.config.backup import BackupSection
from pvc.config.provisioner import ProvisionerSection


@dataclass
class ApiContext:
    cluster: Cluster
    settings: ApiSection = field(default_factory=ApiSection)
    cluster_name: str = ""
    upstream_ip: str = ""
    log_lines_default: int = 1000
    state_dir: Path = Path("/var/lib/pvc")
    #: Cluster default for choosing VM target nodes (hypervisor.target_selector).
    vm_selector: str = "mem"
    #: The primary's Ceph client (storage.ceph_conf); unconfigured answers writes with 503.
    storage: StorageAccess = field(default_factory=StorageAccess)
    #: Login sessions and failed-attempt counts (this process's memory).
    sessions: SessionStore = field(default_factory=SessionStore)
    logins: LoginLimiter = field(default_factory=LoginLimiter)
    #: What VM definitions may use of the nodes (the allowlist's settings, without a role).
    xml_policy: XmlPolicy = field(default_factory=XmlPolicy)
    #: A further check of ACL rule text (the firewall adapter's ``nft --check``); None: the
    #: safe-subset check of pvc.cluster.network.rules alone.
    network_rule_checker: RuleChecker | None = None
    #: Subnets no client network may overlap: the cluster's upstream, cluster and storage networks.
    reserved_networks: tuple[Subnet, ...] = ()
    #: The provisioner database, or None with the reason in :attr:`database_problem`.
    database: Database | None = None
    database_problem: str = "the database is not configured"
    #: How the provisioner defines VMs, and the cephx user and libvirt secret of their disks.
    provisioner: ProvisionerSection = field(default_factory=ProvisionerSection)
    vm_disk_auth: tuple[str, str] | None = None
    #: Where VM snapshots may be exported and imported (on the primary).
    backup: BackupSection = field(default_factory=BackupSection)
    _vm_listing: VmListing | None = field(default=None, repr=False)
    _wait_gate: WaitGate | None = field(default=None, repr=False)

    @property
    def wait_gate(self) -> WaitGate:
        """Bounds ``wait=true`` requests (``api.limits``); built on first use."""
        if self._wait_gate is None:
            limits = self.settings.limits
            self._wait_gate = WaitGate(limits.waiting_slots, limits.wait_timeout)
        return self._wait_gate

    @property
    def storage_ops(self) -> StorageOps:
        """Immediate storage changes through :attr:`storage`."""
        return StorageOps(self.cluster, self.storage)

    @property
    def vm_listing(self) -> VmListing:
        """The API's incrementally maintained VM list (built on first use)."""
        if self._vm_listing is None:
            self._vm_listing = VmListing(self.cluster.cache)
        return self._vm_listing


def ctx() -> ApiContext:
    """The context of the running app."""
    return current_app.extensions["pvc"]


def database() -> Database:
    """The provisioner database; DatabaseUnavailable (503) when the API has none."""
    found = ctx().database
    if found is None:
        raise DatabaseUnavailable(ctx().database_problem)
    return found


def cluster() -> Cluster:
    """The cluster handle of the running app."""
    return ctx().cluster


def caller_xml_policy() -> XmlPolicy:
    """The allowlist's settings with the privilege of the request's API key (admin or not)."""
    return ctx().xml_policy.as_role(admin=g.get("pvc_role") == ADMIN)
