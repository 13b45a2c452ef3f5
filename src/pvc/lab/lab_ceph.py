"""Ceph in the lab cluster: a monitor and a manager on the first coordinator, one OSD per node.

The monitor and manager run inside the first coordinator's namespaces on its storage
address. The OSDs are added the way an operator adds them: through the API
(``POST /storage/ceph/osd`` with the lab's ``file`` device type), which queues a task on
each node; each node daemon's OSD keeper creates and runs its file-backed OSD. Then the
lab's RBD pool is created through the API and the cluster is ready when the manager is
available and every PG is active+clean.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

from pvc.lab import ceph
from pvc.lab.layout import LabLayout
from pvc.storage import daemons, status
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError

#: The RBD pool the lab creates for VM disks.
POOL = "vms"
POOL_PGS = 32
PORTS = ceph.Ports()


class LabCephError(StorageError):
    """The lab's Ceph could not be set up."""


def directory(layout: LabLayout) -> Path:
    """Where the lab's Ceph configuration, monitor/manager data, logs and pid files live."""
    return layout.directory / "ceph"


def conf_path(layout: LabLayout) -> Path:
    """The lab cluster's ceph.conf (every node's ``storage.ceph_conf``)."""
    return directory(layout) / "ceph.conf"


def mon_node(layout: LabLayout) -> str:
    """The node running the monitor and the manager."""
    return layout.coordinator_names[0]


def mon_address(layout: LabLayout) -> str:
    """The monitor's storage-network address."""
    return str(layout.addresses(mon_node(layout))["storage"].ip)


def mon_v1_endpoint(layout: LabLayout) -> tuple[str, int]:
    """(address, port) of the monitor's msgr v1 endpoint, as VM disk XML names it."""
    return mon_address(layout), PORTS.mon_v1


def prepare(layout: LabLayout) -> str:
    """Write a fresh ceph.conf and create the monitor's store; returns the fsid."""
    d = directory(layout)
    shutil.rmtree(d, ignore_errors=True)
    for sub in ("data", "run", "log", "crash"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    fsid = str(uuid.uuid4())
    address = mon_address(layout)
    subnet = str(layout.addresses(mon_node(layout))["storage"].network)
    text = ceph.conf_text(d, fsid, address, PORTS, network=subnet)
    # every daemon binds to its own node's storage address in the subnet; only the
    # monitor's address is fixed
    text = text.replace(f"public addr = {address}\n", "")
    text += f"[mon.{ceph.MON_ID}]\npublic addr = {address}\n"
    conf_path(layout).write_text(text)
    monmap = d / "monmap"
    daemons.run_tool(
        [
            "monmaptool",
            "--create",
            "--fsid",
            fsid,
            "--addv",
            ceph.MON_ID,
            ceph.mon_addrs(address, PORTS),
            str(monmap),
        ],
        conf_path(layout),
    )
    daemons.run_tool(
        ["ceph-mon", "-c", str(conf_path(layout)), "--mkfs", "-i", ceph.MON_ID, "--monmap", str(monmap)],
        conf_path(layout),
    )
    (d / "data" / f"mgr.{ceph.MGR_ID}").mkdir(parents=True, exist_ok=True)
    return fsid


def daemon_commands(layout: LabLayout) -> dict[str, list[str]]:
    """The monitor's and manager's command lines (run inside the monitor node)."""
    conf = conf_path(layout)
    return {
        "ceph-mon": daemons.daemon_command("mon", ceph.MON_ID, conf),
        "ceph-mgr": daemons.daemon_command("mgr", ceph.MGR_ID, conf),
    }


def _check(response: requests.Response, what: str) -> dict:
    if response.status_code not in (200, 202):
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise LabCephError(f"{what}: {response.status_code} {message}")
    return response.json()


def _wait_task(session: requests.Session, base: str, task_id: str, deadline: float) -> dict:
    while time.monotonic() < deadline:
        task = _check(session.get(f"{base}/tasks/{task_id}", timeout=10), "task status")
        if task["state"] in ("SUCCESS", "FAILURE"):
            return task
        time.sleep(0.2)
    raise LabCephError(f"task {task_id} did not finish in time")


def _wait_api(session: requests.Session, base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if session.get(f"{base}/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise LabCephError("the lab API did not answer")


def add_osds_and_pool(
    layout: LabLayout, api_base: str, *, say: Callable[[str], None] = print, timeout: float = 120.0
) -> None:
    """Add one file-backed OSD per node and the lab's pool through the API; wait until ready."""
    deadline = time.monotonic() + timeout
    session = requests.Session()
    _wait_api(session, api_base, deadline)
    submitted = {}
    for node in layout.node_names:
        body = {"node": node, "device": "file", "weight": "1.0"}
        accepted = _check(
            session.post(f"{api_base}/storage/ceph/osd", data=body, timeout=30), f"add OSD on {node}"
        )
        submitted[node] = accepted["task_id"]
    for node, task_id in submitted.items():
        task = _wait_task(session, api_base, task_id, deadline)
        if task["state"] != "SUCCESS":
            raise LabCephError(f"adding the OSD of {node} failed: {task.get('status')}")
    copies = min(3, len(layout.node_names))
    replication = f"copies={copies},mincopies={max(1, copies - 1)}"
    body = {"pool": POOL, "pgs": str(POOL_PGS), "replcfg": replication}
    _check(session.post(f"{api_base}/storage/ceph/pool", data=body, timeout=60), f"create pool {POOL}")
    with CephClient(conf_path(layout), timeout=20) as client:
        status.wait_ready(
            client, len(layout.node_names), max(5.0, deadline - time.monotonic()), after_change=True
        )
    say(f"ceph: {len(layout.node_names)} OSDs up, pool {POOL} ({replication}) active+clean")
