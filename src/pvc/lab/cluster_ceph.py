"""Ceph in the lab cluster: a monitor on every coordinator, a manager, one OSD per node.

Each monitor runs inside its coordinator's namespaces on that node's storage address
(the monitor id is the node name); the manager runs on the first coordinator. The OSDs
are added the way an operator adds them: through the API (``POST /storage/ceph/osd`` with
the lab's ``file`` device type), which queues a task on each node; each node daemon's OSD
keeper creates and runs its file-backed OSD. Then the
lab's RBD pool is created through the API and the cluster is ready when the manager is
available and every PG is active+clean.

cephx is on: the monitors start with every key (see
:func:`pvc.lab.standalone_ceph.create_keys`); the nodes reach Ceph as the ``node`` role's
user, their API as the ``api`` role's, VMs' QEMU as the ``vm`` role's through a libvirt
secret each node daemon defines; the lab itself (``pvc-lab``, tests) as ``client.admin``.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pvc.client import waiters
from pvc.lab import endpoint, standalone_ceph
from pvc.lab.layout import LabLayout
from pvc.storage import cephx, daemons, status
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError

#: The RBD pool the lab creates for VM disks.
POOL = "vms"
POOL_PGS = 32
PORTS = standalone_ceph.Ports()
#: Seconds between polls of an OSD task.
TASK_POLL_INTERVAL = 0.2
#: The libvirt secret that holds the VM user's key on every lab node.
VM_SECRET_UUID = "5c2f0b57-8f3e-4f43-9a43-0c6b1e1d7a01"


class LabCephError(StorageError):
    """The lab's Ceph could not be set up."""


def directory(layout: LabLayout) -> Path:
    """Where the lab's Ceph configuration, monitor/manager data, logs and pid files live."""
    return layout.directory / "ceph"


def conf_path(layout: LabLayout) -> Path:
    """The lab cluster's ceph.conf (every node's ``storage.ceph_conf``)."""
    return directory(layout) / "ceph.conf"


def mon_nodes(layout: LabLayout) -> list[str]:
    """The nodes running a monitor: every coordinator (the monitor id is the node name)."""
    return list(layout.coordinator_names)


def mgr_node(layout: LabLayout) -> str:
    """The node running the manager: the first coordinator."""
    return layout.coordinator_names[0]


def mon_address(layout: LabLayout, node: str) -> str:
    """The storage-network address of ``node``'s monitor."""
    return str(layout.addresses(node)["storage"].ip)


def mon_v1_endpoints(layout: LabLayout) -> list[tuple[str, int]]:
    """(address, port) of every monitor's msgr v1 endpoint, as VM disk XML names them."""
    return [(mon_address(layout, node), PORTS.mon_v1) for node in mon_nodes(layout)]


def prepare(layout: LabLayout) -> str:
    """Write a fresh ceph.conf and create every monitor's store; returns the fsid."""
    d = directory(layout)
    shutil.rmtree(d, ignore_errors=True)
    for sub in ("data", "run", "log", "crash"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    fsid = str(uuid.uuid4())
    monitors = [(node, mon_address(layout, node)) for node in mon_nodes(layout)]
    first = monitors[0][1]
    subnet = str(layout.addresses(mon_nodes(layout)[0])["storage"].network)
    conf = conf_path(layout)
    conf.write_text(standalone_ceph.conf_text(d, fsid, first, PORTS, network=subnet, monitors=monitors))
    monmap = d / "monmap"
    create = ["monmaptool", "--create", "--fsid", fsid]
    for mon_id, address in monitors:
        create += ["--addv", mon_id, standalone_ceph.mon_addrs(address, PORTS)]
    daemons.run_tool([*create, str(monmap)], conf)
    standalone_ceph.make_monitors(d, conf, monmap, [mon_id for mon_id, _ in monitors])
    return fsid


def user(role: str) -> str:
    """The cephx user of PVC role ``role`` (``node``, ``api``, ``vm``) in the lab."""
    return cephx.DEFAULT_USERS[role]


def keyring(layout: LabLayout, role: str) -> Path:
    """The keyring of PVC role ``role``'s user (one file shared by the lab's nodes)."""
    return standalone_ceph.client_keyring(directory(layout), user(role))


def storage_keys(layout: LabLayout) -> dict[str, str]:
    """The cephx part of a lab node's ``storage`` config section."""
    return {
        "ceph_user": user("node"),
        "ceph_keyring": str(keyring(layout, "node")),
        "api_user": user("api"),
        "api_keyring": str(keyring(layout, "api")),
        "vm_user": user("vm"),
        "vm_keyring": str(keyring(layout, "vm")),
        "vm_secret_uuid": VM_SECRET_UUID,
    }


def daemon_commands(layout: LabLayout) -> list[tuple[str, str, list[str]]]:
    """``(node, role, argv)`` of every monitor and the manager (each run inside its node)."""
    conf = conf_path(layout)
    commands = [(node, "ceph-mon", daemons.daemon_command("mon", node, conf)) for node in mon_nodes(layout)]
    commands.append(
        (mgr_node(layout), "ceph-mgr", daemons.daemon_command("mgr", standalone_ceph.MGR_ID, conf))
    )
    return commands


def add_osds_and_pool(
    layout: LabLayout, *, say: Callable[[str], None] = print, timeout: float = 120.0
) -> None:
    """Add one file-backed OSD per node and the lab's pool through the API; wait until ready."""
    deadline = time.monotonic() + timeout
    client = endpoint.client(layout)
    waiters.wait_for_api(client, timeout)
    submitted = {}
    for node in layout.node_names:
        body = {"node": node, "device": "file", "weight": "1.0"}
        queued = endpoint.accepted(client.post("/storage/ceph/osd", data=body), f"add OSD on {node}")
        submitted[node] = queued["task_id"]
    for node, task_id in submitted.items():
        remaining = max(0.0, deadline - time.monotonic())
        task = waiters.wait_for_task(client, task_id, poll_interval=TASK_POLL_INTERVAL, timeout=remaining)
        if task["state"] != waiters.TASK_SUCCESS:
            raise LabCephError(f"adding the OSD of {node} failed: {task.get('status')}")
    copies = min(3, len(layout.node_names))
    replication = f"copies={copies},mincopies={max(1, copies - 1)}"
    body = {"pool": POOL, "pgs": str(POOL_PGS), "replcfg": replication}
    endpoint.accepted(client.post("/storage/ceph/pool", data=body), f"create pool {POOL}")
    with CephClient(conf_path(layout), timeout=20) as ceph:
        status.wait_ready(
            ceph, len(layout.node_names), max(5.0, deadline - time.monotonic()), after_change=True
        )
    say(f"ceph: {len(layout.node_names)} OSDs up, pool {POOL} ({replication}) active+clean")
