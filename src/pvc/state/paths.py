"""Every ZooKeeper path PVC uses, in one place.

Nothing else in the code base spells a path; it calls these helpers.
"""

from __future__ import annotations

import hashlib

SCHEMA = "/schema"
SCHEMA_VERSION = "/schema/version"
#: Fingerprint of the credential the whole tree was last restricted to (see pvc.state.acl).
SCHEMA_ACL = "/schema/acl"

CONFIG = "/config"
PRIMARY_NODE = "/config/primary_node"
MAINTENANCE = "/config/maintenance"
CLUSTER_NAME = "/config/cluster_name"
#: When the primary last started each scheduled run (see pvc.node.schedules).
SCHEDULES = "/config/schedules"

NODES = "/nodes"
DOMAINS = "/domains"
DOMAIN_NAMES = "/domain_names"
NETWORKS = "/networks"
CEPH = "/ceph"
FAULTS = "/faults"
TASKS = "/tasks"
LOGS = "/logs"
LOCKS = "/locks"

PRIMARY_LOCK = "/locks/primary"
SCHEMA_LOCK = "/locks/schema"
FENCE_LOCKS = "/locks/fence"
#: One lock per VM that receives sends from another cluster (see pvc.cluster.vm.mirror_receive).
RECEIVE_LOCKS = "/locks/receive"

#: Patroni's namespace (its own tree, beside PVC's: Patroni writes it, PVC only reads it).
PATRONI = "/patroni"

#: Top-level trees every cluster has; created by the first schema step.
ROOTS = (SCHEMA, CONFIG, NODES, DOMAINS, DOMAIN_NAMES, NETWORKS, CEPH, FAULTS, TASKS, LOGS, LOCKS)

#: Number of slots in a node's log ring (see pvc.state.logring).
LOG_RING_SLOTS = 32


def node(name: str) -> str:
    """The node's own znode; holds its static record (JSON)."""
    return f"{NODES}/{name}"


def node_daemon_state(name: str) -> str:
    """Daemon state of a node: init, run, shutdown, stop, dead, fenced."""
    return f"{NODES}/{name}/daemon_state"


def node_coordinator_state(name: str) -> str:
    """Coordinator state of a node: primary, secondary, takeover, relinquish, client."""
    return f"{NODES}/{name}/coordinator_state"


def node_domain_state(name: str) -> str:
    """Domain state of a node: ready, flush, flushed, unflush, fence-flush."""
    return f"{NODES}/{name}/domain_state"


def node_keepalive(name: str) -> str:
    """The node's last keepalive (JSON: timestamp, load, memory)."""
    return f"{NODES}/{name}/keepalive"


def node_ipmi(name: str) -> str:
    """How peers reach the node's BMC to fence it (JSON, written by the node at start)."""
    return f"{NODES}/{name}/ipmi"


def node_fence(name: str) -> str:
    """The node's last fence: state, steps and outcome (JSON, written by the fencing node)."""
    return f"{NODES}/{name}/fence"


def receive_lock(vm_name: str) -> str:
    """The lock over what is received for VM ``vm_name`` and its take-over (named by a digest
    of the name, which is whatever a request's URL carried)."""
    return f"{RECEIVE_LOCKS}/{hashlib.sha256(vm_name.encode()).hexdigest()[:32]}"


def fence_lock(name: str) -> str:
    """Held by the coordinator fencing the node: one fencer per node at a time."""
    return f"{FENCE_LOCKS}/{name}"


def node_presence(name: str) -> str:
    """Ephemeral znode that exists while the node's daemon holds a ZooKeeper session."""
    return f"{NODES}/{name}/presence"


def node_log(name: str) -> str:
    """Parent of the node's log ring slots."""
    return f"{LOGS}/{name}"


def node_log_slot(name: str, slot: int) -> str:
    """One slot of the node's log ring."""
    return f"{LOGS}/{name}/{slot:02d}"


# -- tasks (durable task records; see pvc.tasks) -------------------------------------------


def task(task_id: str) -> str:
    """One task's record."""
    return f"{TASKS}/{task_id}"


def task_claims() -> str:
    """Parent of every task's claim lock (under /locks: live state, never backed up)."""
    return f"{LOCKS}/tasks"


def task_claim(task_id: str) -> str:
    """The kazoo Lock a worker holds while it runs the task (its contenders are ephemeral)."""
    return f"{LOCKS}/tasks/{task_id}"


# -- faults (see pvc.cluster.faults) --------------------------------------------------------


def fault(fault_id: str) -> str:
    """One fault's record."""
    return f"{FAULTS}/{fault_id}"


# -- VMs (see pvc.state.vms) -----------------------------------------------------------------


def domain(uuid: str) -> str:
    """A VM's znode, keyed by UUID; holds its metadata (name, limits, tags...)."""
    return f"{DOMAINS}/{uuid}"


def domain_xml(uuid: str) -> str:
    """The VM's libvirt domain XML, as last defined by a client."""
    return f"{DOMAINS}/{uuid}/xml"


def domain_state(uuid: str) -> str:
    """The VM's desired state and placement (JSON); written by clients and its node, by CAS."""
    return f"{DOMAINS}/{uuid}/state"


def domain_console(uuid: str) -> str:
    """The tail of the VM's serial console log, kept by the node running it."""
    return f"{DOMAINS}/{uuid}/console"


def domain_snapshots(uuid: str) -> str:
    """Parent of the VM's snapshot records (see :mod:`pvc.state.vm_snapshots`)."""
    return f"{DOMAINS}/{uuid}/snapshots"


def domain_snapshot(uuid: str, name: str) -> str:
    """One VM snapshot: its time, XML and RBD snapshots (JSON)."""
    return f"{DOMAINS}/{uuid}/snapshots/{name}"


def domain_name(name: str) -> str:
    """Name index entry: holds the UUID of the VM called ``name`` (makes names unique)."""
    return f"{DOMAIN_NAMES}/{name}"


# -- client networks (see pvc.state.networks) -----------------------------------------------


def network(vni: int | str) -> str:
    """A client network's znode, keyed by VNI; holds its record (JSON)."""
    return f"{NETWORKS}/{vni}"


def network_reservations(vni: int | str) -> str:
    """Parent of a network's DHCP reservations ("static leases")."""
    return f"{NETWORKS}/{vni}/reservations"


def network_reservation(vni: int | str, mac: str) -> str:
    """One DHCP reservation, keyed by the client's MAC address (lower case)."""
    return f"{NETWORKS}/{vni}/reservations/{mac}"


def network_leases(vni: int | str) -> str:
    """Parent of a network's dynamic DHCP leases (written by the primary's DHCP lease hook)."""
    return f"{NETWORKS}/{vni}/leases"


def network_lease(vni: int | str, mac: str) -> str:
    """One dynamic DHCP lease, keyed by the client's MAC address (lower case)."""
    return f"{NETWORKS}/{vni}/leases/{mac}"


def network_acls(vni: int | str) -> str:
    """Parent of a network's firewall rules (ACLs)."""
    return f"{NETWORKS}/{vni}/acls"


def network_acl(vni: int | str, description: str) -> str:
    """One ACL, keyed by its description (unique within the network)."""
    return f"{NETWORKS}/{vni}/acls/{description}"


# Ceph: a mirror of the storage cluster's state, refreshed by the primary (pvc.node.storage_stats).
CEPH_STATUS = "/ceph/status"
CEPH_UTIL = "/ceph/util"
CEPH_OSDS = "/ceph/osds"
#: Client I/O rates of every OSD that answers, ``{id: {wr_ops, wr_data, rd_ops, rd_data}}``.
CEPH_OSD_IO = "/ceph/osd_io"
CEPH_POOLS = "/ceph/pools"
CEPH_VOLUMES = "/ceph/volumes"
CEPH_SNAPSHOTS = "/ceph/snapshots"
#: Where each OSD lives (node, device, DB device), written by the OSD tasks; not mirrored.
CEPH_OSD_DEVICES = "/ceph/osd_devices"
#: Storage benchmark jobs and their results.
CEPH_BENCHMARKS = "/ceph/benchmarks"


def ceph_osd(osd_id: int | str) -> str:
    """An OSD's figures (JSON)."""
    return f"{CEPH_OSDS}/{osd_id}"


def ceph_pool(pool: str) -> str:
    """A pool's figures (JSON)."""
    return f"{CEPH_POOLS}/{pool}"


def ceph_pool_volumes(pool: str) -> str:
    """Parent of a pool's volumes."""
    return f"{CEPH_VOLUMES}/{pool}"


def ceph_volume(pool: str, volume: str) -> str:
    """A volume's figures (JSON)."""
    return f"{CEPH_VOLUMES}/{pool}/{volume}"


def ceph_pool_snapshots(pool: str) -> str:
    """Parent of a pool's volumes' snapshot lists."""
    return f"{CEPH_SNAPSHOTS}/{pool}"


def ceph_volume_snapshots(pool: str, volume: str) -> str:
    """Parent of a volume's snapshots."""
    return f"{CEPH_SNAPSHOTS}/{pool}/{volume}"


def ceph_snapshot(pool: str, volume: str, snapshot: str) -> str:
    """A snapshot's figures (JSON)."""
    return f"{CEPH_SNAPSHOTS}/{pool}/{volume}/{snapshot}"


def ceph_osd_device(osd_id: int | str) -> str:
    """Where an OSD lives: its node and devices (JSON)."""
    return f"{CEPH_OSD_DEVICES}/{osd_id}"


def ceph_benchmark(job: str) -> str:
    """A storage benchmark job and its result (JSON)."""
    return f"{CEPH_BENCHMARKS}/{job}"


# -- SR-IOV (see pvc.state.sriov) --------------------------------------------------------------
# Under the node's own znode: what its daemon found, and what clients want of each VF.


def node_sriov(name: str) -> str:
    """Parent of the node's SR-IOV records."""
    return f"{NODES}/{name}/sriov"


def node_sriov_pfs(name: str) -> str:
    """Parent of the node's physical functions, as its daemon last reported them."""
    return f"{NODES}/{name}/sriov/pf"


def node_sriov_pf(name: str, pf: str) -> str:
    """One physical function of the node (JSON), written by its daemon."""
    return f"{NODES}/{name}/sriov/pf/{pf}"


def node_sriov_vfs(name: str) -> str:
    """Parent of the node's virtual functions, as its daemon last reported them."""
    return f"{NODES}/{name}/sriov/vf"


def node_sriov_vf(name: str, vf: str) -> str:
    """One virtual function of the node and its settings as the driver reports them (JSON)."""
    return f"{NODES}/{name}/sriov/vf/{vf}"


def node_sriov_configs(name: str) -> str:
    """Parent of the settings clients asked for the node's virtual functions."""
    return f"{NODES}/{name}/sriov/config"


def node_sriov_config(name: str, vf: str) -> str:
    """The settings clients asked for one virtual function (JSON), applied by the node's daemon."""
    return f"{NODES}/{name}/sriov/config/{vf}"


def patroni_scope(scope: str) -> str:
    """Patroni's tree for one database cluster (``scope``: the PVC cluster's name)."""
    return f"{PATRONI}/{scope}"


def patroni_members(scope: str) -> str:
    """Parent of Patroni's member znodes (ephemeral, JSON: conn_url, role, state)."""
    return f"{PATRONI}/{scope}/members"


def patroni_leader(scope: str) -> str:
    """Patroni's leader key: the name of the member that runs the read-write PostgreSQL."""
    return f"{PATRONI}/{scope}/leader"


def schedule(task_name: str) -> str:
    """The record of a scheduled task type's last start: ``{"last": <epoch>, "task": <id>}``."""
    return f"{SCHEDULES}/{task_name}"
