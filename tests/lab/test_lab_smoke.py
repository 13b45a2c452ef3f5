"""The lab cluster end to end: real namespaces, a 3-member ZooKeeper ensemble, pvcnoded per node."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests

from pvc import processes, tasks
from pvc.config import read_credential_file
from pvc.lab.netns import netns_pids
from pvc.processes import ProcessRef, is_alive
from pvc.state.store import Store
from pvc.tasks.builtin import sleep
from tests.helpers import reachable_dir, wait_for
from tests.lab.zookeeper_access import assert_only_pvc_gets_in

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

PREFIX = "pvct"
NET_INDEX = 77


def client_env(lab_dir: Path) -> dict[str, str]:
    """The lab registers its `pvc` connection in a store of the test's own."""
    return {**os.environ, "PVC_CLIENT_DIR": str(lab_dir.parent / "client")}


def pvc_lab(lab_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "pvc.lab.cli", "--dir", str(lab_dir), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=client_env(lab_dir),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pvc-lab {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def pvc_run(lab_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the `pvc` CLI against the lab (through the lab's registered connection)."""
    argv = [sys.executable, "-m", "pvc.cli.main", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=client_env(lab_dir))


def pvc(lab_dir: Path, *args: str) -> dict:
    """Run the `pvc` CLI against the lab and parse its JSON output."""
    result = pvc_run(lab_dir, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def status(lab_dir: Path) -> dict:
    return json.loads(pvc_lab(lab_dir, "status", "--json", check=False).stdout)


def node_states(lab_dir: Path) -> dict[str, tuple[str, str]]:
    return {n["name"]: (n["daemon_state"], n["coordinator_state"]) for n in status(lab_dir)["nodes"]}


def primary_of(lab_dir: Path) -> str | None:
    primaries = [name for name, (_, c) in node_states(lab_dir).items() if c == "primary"]
    return primaries[0] if len(primaries) == 1 else None


def is_qemu(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("qemu")
    except OSError:
        return False


def is_frr(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("zebra", "bgpd")
    except OSError:
        return False


def is_database(pid: int) -> bool:
    """A process of the node's database member (Patroni, or a PostgreSQL it runs)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres" or (
            b"patroni" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
    except OSError:
        return False


def leftovers() -> list[str]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [line for line in (netns + links).splitlines() if f"{PREFIX}{NET_INDEX}" in line]


@pytest.fixture
def lab_dir(tmp_path: Path):
    with reachable_dir("pvc-lab-test-") as base:  # the nodes' APIs run unprivileged
        directory = base / "lab"
        yield directory
        if (directory / "lab.json").exists():
            for log_dir in (directory / "nodes").glob("*/log"):  # kept for diagnosis
                shutil.copytree(log_dir, tmp_path / "logs" / log_dir.parent.name)
            pvc_lab(directory, "down", check=False)


def api_processes(netns: str) -> list[int]:
    """PIDs of pvcapid (its gunicorn arbiter and worker) in a node's namespace."""
    found = []
    for pid in netns_pids(netns):
        try:
            if b"pvc.api.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def uid_of(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Uid:"))
    return int(line.split()[1])


def test_lab_up_failover_dead_detection_and_down(lab_dir: Path):
    up = pvc_lab(lab_dir, "up", "--prefix", PREFIX, "--net-index", str(NET_INDEX))
    assert "lab up in" in up.stderr
    report = status(lab_dir)
    assert report["healthy"]
    assert [n["name"] for n in report["nodes"]] == ["hv1", "hv2", "hv3"]
    assert {n["daemon_state"] for n in report["nodes"]} == {"run"}
    assert {n["domain_state"] for n in report["nodes"]} == {"ready"}
    primary = primary_of(lab_dir)
    assert primary and report["primary_node"] == primary
    assert_only_pvc_gets_in(report, lab_dir)
    pids = {n["name"]: n["pids"] for n in report["nodes"]}
    base = {"anchor", "libvirtd", "zookeeper", "patroni", "pvcnoded"}
    # the lab's Ceph: a monitor on every coordinator, the manager on the first
    assert set(pids["hv1"]) == base | {"ceph-mon", "ceph-mgr"}
    assert set(pids["hv2"]) == set(pids["hv3"]) == base | {"ceph-mon"}

    # the CLI reaches the API on the primary through the lab's own connection (the default
    # in the test's fresh store);
    # moving the primary moves the API with it, and the CLI follows
    store = lab_dir.parent / "client"
    assert (store / "default").read_text().strip() == "lab-pvct-77"
    assert json.loads((store / "pvc.json").read_text())["lab-pvct-77"]["host"] == f"10.100.{NET_INDEX}.250"
    cli_status = pvc(lab_dir, "cluster", "status", "-f", "json")
    assert cli_status["primary_node"] == primary and cli_status["nodes"]["total"] == 3
    # the provisioner's database: a Patroni member on every coordinator, the API reaching
    # the leader (the first member initialises the database while the lab starts)
    add = ("provisioner", "template", "system", "add", "lab-small", "-u", "1", "-m", "256")
    wait_for(lambda: pvc_run(lab_dir, *add).returncode == 0, timeout=90, interval=1)
    # ... with the lab's key: the API refuses a request without one, and runs unprivileged
    api_url = f"http://10.100.{NET_INDEX}.250:7370/api/v1"
    refused = requests.get(f"{api_url}/status", timeout=10)
    assert refused.status_code == 401 and "X-Api-Key" in refused.json()["message"]
    key = (lab_dir / "api-key").read_text().strip()
    assert requests.get(f"{api_url}/status", headers={"X-Api-Key": key}, timeout=10).status_code == 200
    api_pids = api_processes(f"{PREFIX}{NET_INDEX}-{primary}")
    assert api_pids and {uid_of(pid) for pid in api_pids} == {pwd.getpwnam("pvcapi").pw_uid}
    target = next(n for n in ("hv1", "hv2", "hv3") if n != primary)
    moved = pvc_run(lab_dir, "node", "primary", target, "--wait")
    assert moved.returncode == 0, moved.stderr
    assert primary_of(lab_dir) == target
    assert wait_for(lambda: pvc(lab_dir, "cluster", "status", "-f", "json")["primary_node"] == target, 10)
    primary = target
    templates = pvc(lab_dir, "provisioner", "template", "system", "list", "-f", "json")
    assert [t["name"] for t in templates] == ["lab-small"]  # the new primary's API reads it

    # a task keeps running, and stays visible, while the primary (and the API) moves
    worker = next(n for n in ("hv1", "hv2", "hv3") if n != primary)
    zk = Store(
        ",".join(report["zookeeper"]),
        timeout=5,
        credential=read_credential_file(Path(report["zookeeper_auth_file"])),
    )
    assert zk.start(give_up_after=10)
    try:
        record = tasks.submit(zk, sleep, worker, {"seconds": 6, "steps": 12})
    finally:
        zk.stop()
    wait_for(
        lambda: any(
            t["id"] == record.id and t["type"] == "active"
            for t in pvc(lab_dir, "cluster", "task", "-f", "json")
        ),
        10,
    )
    mover = pvc_run(lab_dir, "node", "primary", worker, "--wait")
    assert mover.returncode == 0, mover.stderr
    waited = pvc_run(lab_dir, "-q", "cluster", "task", record.id)
    assert waited.returncode == 0 and "SUCCESS" in waited.stdout, waited.stdout + waited.stderr
    primary = worker

    # a second up starts nothing, but can add demo VMs (through the API)
    again = pvc_lab(lab_dir, "up", "--prefix", PREFIX, "--net-index", str(NET_INDEX), "--vms", "1")
    assert "already up" in again.stdout
    assert {n["name"]: n["pids"] for n in status(lab_dir)["nodes"]} == pids
    assert "VM demo1 booted on hv" in again.stderr
    assert "LAB-MARKER booted" in (lab_dir / "serial" / "demo1.log").read_text()

    # each node has its own hostname (UTS namespace)
    anchor = pids["hv2"]["anchor"]
    hostname = subprocess.run(
        ["nsenter", "-t", str(anchor), "-u", "hostname"], capture_output=True, text=True
    )
    assert hostname.stdout.strip() == "hv2"

    # SIGKILL a secondary's daemon: status reports the dead process at once; peers mark it dead,
    # then fence it: its BMC powers it off and on, and it rejoins flushed
    victim = next(n for n in ("hv1", "hv2", "hv3") if n != primary)
    pvc_lab(lab_dir, "node", "kill", victim)
    degraded = status(lab_dir)
    assert next(n for n in degraded["nodes"] if n["name"] == victim)["alive"]["pvcnoded"] is False
    assert pvc_lab(lab_dir, "status", check=False).returncode == 2
    wait_for(lambda: node_states(lab_dir)[victim][0] == "dead", timeout=30, interval=0.3)
    wait_for(lambda: fenced_and_back(lab_dir, victim), timeout=60, interval=0.5)
    assert pvc_run(lab_dir, "node", "ready", victim, "--wait").returncode == 0

    # kill the primary's daemon: another coordinator becomes primary
    pvc_lab(lab_dir, "node", "kill", primary)
    new_primary = wait_for(
        lambda: (p := primary_of(lab_dir)) and p != primary and p, timeout=30, interval=0.3
    )
    assert new_primary != primary
    # the killed primary's API died with it: its namespace holds only the lab's own processes
    # (anchor, libvirtd, ZooKeeper, the database member), the QEMU of a demo VM that may run
    # there, and the node's FRR, which keeps the VMs' networks through a daemon restart
    lab_pids = {r["pid"] for r in json.loads((lab_dir / "lab.json").read_text())["processes"].values()}
    netns = f"{PREFIX}{NET_INDEX}-{primary}"
    others = {pid for pid in netns_pids(netns) if not (is_qemu(pid) or is_frr(pid) or is_database(pid))}
    assert others <= lab_pids
    # it is fenced in turn and rejoins as a secondary, flushed
    wait_for(lambda: fenced_and_back(lab_dir, primary), timeout=60, interval=0.5)
    assert node_states(lab_dir)[primary] == ("run", "secondary")
    assert pvc_run(lab_dir, "node", "ready", primary, "--wait").returncode == 0
    # ... and at start it removed the floating address the crash left on its link
    link = f"{PREFIX}{NET_INDEX}n{primary[2:]}"
    addresses = subprocess.run(
        ["ip", "-n", f"{PREFIX}{NET_INDEX}-{primary}", "-4", "addr", "show", link],
        capture_output=True,
        text=True,
    ).stdout
    assert f"10.100.{NET_INDEX}.250" not in addresses

    # (fences restarted the fenced nodes' processes: their PIDs from here on)
    pids = {n["name"]: n["pids"] for n in status(lab_dir)["nodes"]}
    # a coordinator's Ceph monitor dies: the other two keep quorum and storage keeps working
    killed = pvc_lab(lab_dir, "node", "kill", "hv3", "--service", "ceph-mon")
    assert f"ceph-mon on hv3 (pid {pids['hv3']['ceph-mon']})" in killed.stdout
    added = pvc_run(lab_dir, "storage", "volume", "add", "vms", "after-mon-loss", "4M")
    assert added.returncode == 0, added.stderr
    assert "after-mon-loss" in pvc_run(lab_dir, "storage", "volume", "list").stdout
    wait_for(
        lambda: "quorum hv1,hv2\n" in pvc_run(lab_dir, "storage", "status").stdout, timeout=60, interval=1
    )

    # a ZooKeeper member dies: the primary raises a fault naming it, seen through the API
    pvc_lab(lab_dir, "node", "kill", "hv2", "--service", "zookeeper")
    member = f"ZooKeeper member 10.110.{NET_INDEX}.2:2181 (on hv2) does not answer"
    fault = wait_for(lambda: zookeeper_fault(lab_dir, member), timeout=30, interval=0.5)
    assert fault["health_delta"] > 0 and fault["status"] == "new"
    health = pvc(lab_dir, "cluster", "status", "-f", "json")["cluster_health"]
    assert health["health"] <= 100 - fault["health_delta"] and fault["id"] in str(health["messages"])
    # `pvc-lab up` starts again exactly what has died; the member answers, the fault goes
    healed = pvc_lab(lab_dir, "up")
    restarted = sorted(
        line.split(" (pid")[0] for line in healed.stdout.splitlines() if line.startswith("restarted")
    )
    assert restarted == ["restarted ceph-mon on hv3", "restarted zookeeper on hv2"], healed.stdout
    after = status(lab_dir)
    assert after["healthy"] and pvc_lab(lab_dir, "status", check=False).returncode == 0
    assert after["nodes"][0]["pids"]["zookeeper"] == pids["hv1"]["zookeeper"]  # the living left alone
    wait_for(lambda: zookeeper_fault(lab_dir, member) is None, timeout=30, interval=0.5)
    wait_for(
        lambda: "quorum hv1,hv2,hv3\n" in pvc_run(lab_dir, "storage", "status").stdout, timeout=60, interval=1
    )
    (lab_dir / "mine.txt").write_text("not the lab's")

    refs = [
        ProcessRef.from_json(r) for r in json.loads((lab_dir / "lab.json").read_text())["processes"].values()
    ]
    down = pvc_lab(lab_dir, "down")
    assert "lab is down" in down.stdout
    assert "lab-pvct-77" not in json.loads((store / "pvc.json").read_text())
    assert not (store / "default").exists()  # it was the default: none is picked in its place
    assert not any(is_alive(ref) for ref in refs)
    assert leftovers() == []
    assert sorted(p.name for p in lab_dir.iterdir()) == ["mine.txt"]  # only what the lab created went
    assert "nothing to do" in pvc_lab(lab_dir, "down").stdout


def fenced_and_back(lab_dir: Path, node: str) -> bool:
    """Whether ``node`` was power-cycled by a fence and is back in run, flushed."""
    report = next(n for n in status(lab_dir)["nodes"] if n["name"] == node)
    states = (report["daemon_state"], report["domain_state"])
    return states == ("run", "flushed") and all(report["alive"].values())


def zookeeper_fault(lab_dir: Path, message: str) -> dict | None:
    """The fault (through the API) whose message begins with ``message``, if there is one."""
    faults = pvc(lab_dir, "cluster", "fault", "list", "-f", "json")
    return next((f for f in faults if f["message"].startswith(message)), None)


def log_time(lab_dir: Path, node: str, words: str) -> datetime | None:
    """Time of the last pvcnoded log line of ``node`` containing ``words``."""
    path = lab_dir / "nodes" / node / "log" / "pvcnoded.log"
    found = None
    for line in path.read_text().splitlines():
        if words in line:
            found = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    return found


def test_partitioned_primary_steps_down_before_a_new_one_and_dead_lab_is_cleaned(lab_dir: Path):
    pvc_lab(lab_dir, "up", "--prefix", PREFIX, "--net-index", str(NET_INDEX))
    old = primary_of(lab_dir)
    assert old
    layout = json.loads((lab_dir / "lab.json").read_text())["layout"]
    netns = f"{PREFIX}{NET_INDEX}-{old}"
    link = f"{PREFIX}{NET_INDEX}n{old[2:]}"
    subprocess.run(["ip", "-n", netns, "link", "set", link, "down"], check=True)

    new = wait_for(
        lambda: (p := status(lab_dir)["primary_node"]) not in (old, "unknown", "none") and p,
        timeout=30,
        interval=0.3,
    )
    stepped_down = wait_for(lambda: log_time(lab_dir, old, "stopped acting as primary"), timeout=10)
    became = wait_for(lambda: log_time(lab_dir, new, "became primary"), timeout=30)  # after its phases
    assert stepped_down < became, "the cut-off primary must stop acting before another takes over"
    # and the takeover follows in bounded time: the old session's expiry (at most a session
    # timeout after its last confirmed write, a quarter of it after the step-down, plus
    # ZooKeeper's tick), the election, and the takeover phases (up to ~2.5 s on this machine's
    # two loaded cores)
    gap = (became - stepped_down).total_seconds()
    assert gap < layout["session_timeout"] + 5

    # heal the partition: the old primary rejoins as a secondary in run
    subprocess.run(["ip", "-n", netns, "link", "set", link, "up"], check=True)
    wait_for(lambda: node_states(lab_dir).get(old) == ("run", "secondary"), timeout=30, interval=0.5)
    assert primary_of(lab_dir) == new

    # the lab dies with its session (all processes gone, namespaces and links stay) ...
    refs = [
        ProcessRef.from_json(r) for r in json.loads((lab_dir / "lab.json").read_text())["processes"].values()
    ]
    for ref in refs:
        processes.send(ref, signal.SIGKILL)  # one may be gone already (a self-fenced daemon stops)
    wait_for(lambda: not any(is_alive(ref) for ref in refs), timeout=10)
    assert leftovers()
    dead = pvc_lab(lab_dir, "status", check=False)
    assert dead.returncode == 2
    assert "has died" in dead.stdout
    # ... and the next up cleans that up and starts afresh
    up = pvc_lab(lab_dir, "up", "--prefix", PREFIX, "--net-index", str(NET_INDEX))
    assert "cleaning up what a previous lab left behind" in up.stderr
    assert status(lab_dir)["healthy"]
    pvc_lab(lab_dir, "down")
    assert leftovers() == []
