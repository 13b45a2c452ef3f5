"""A small real Ceph in one directory: one monitor, one manager and N file-backed OSDs.

Used by the lab and by the storage tests. Everything lives under one directory
(``ceph.conf``, ``data/``, ``run/``, ``log/``) and binds to one address with
configurable ports, so several clusters can share a host. Every daemon is started by us
in the foreground with ``-c <conf>`` and stopped by its PID.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pvc.config import DEFAULT_API_USER
from pvc.processes import ProcessRef
from pvc.storage import cephx, daemons, osds, pools, status
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError, StorageTimeout

MON_ID = "a"
MGR_ID = "x"
STATE_FILE = "lab-ceph.json"
#: Where the clients' keyrings live, one per user (``ceph.<user>.keyring``).
KEYS_DIR = "keys"
#: The monitors' initial keyring (every key, with its caps): removed after ``--mkfs``.
MON_KEYRING = "mon.keyring"


@dataclass(frozen=True)
class Ports:
    """Where the monitor listens (msgr v2 and v1) and the range OSDs and the manager bind in."""

    mon_v2: int = 3310
    mon_v1: int = 6799
    bind_min: int = 7400
    bind_max: int = 7600

    def __post_init__(self) -> None:
        if not 0 < self.bind_min <= self.bind_max < 65536:
            raise ValueError(f"bad bind port range {self.bind_min}-{self.bind_max}")
        for port in (self.mon_v2, self.mon_v1):
            if not 0 < port < 65536 or self.bind_min <= port <= self.bind_max:
                raise ValueError(f"monitor port {port} is invalid or inside the bind range")


def mon_addrs(address: str, ports: Ports) -> str:
    """The monitor's address vector, ``[v2:IP:P2,v1:IP:P1]``."""
    return f"[v2:{address}:{ports.mon_v2},v1:{address}:{ports.mon_v1}]"


def conf_text(
    directory: Path,
    fsid: str,
    address: str,
    ports: Ports,
    *,
    network: str | None = None,
    block_size: str = "10G",
    monitors: Sequence[tuple[str, str]] | None = None,
) -> str:
    """ceph.conf for a small cluster in ``directory`` (knobs measured in platform.md section 5).

    ``network`` is the public network (default: 127.0.0.0/8 on loopback, else the address
    alone); ``block_size`` the apparent size of each OSD's sparse block file. Without
    ``monitors`` one monitor (``MON_ID``) runs on ``address`` and every daemon binds there;
    with ``monitors`` (``(id, address)`` pairs, all on ``ports``) each monitor binds its own
    address and every other daemon picks its address in ``network``.
    """
    d = directory
    if network is None:
        network = "127.0.0.0/8" if address.startswith("127.") else f"{address}/32"
    if monitors:
        mon_host = ",".join(mon_addrs(mon_address, ports) for _, mon_address in monitors)
        members = ",".join(mon_id for mon_id, _ in monitors)
        bind = []
    else:
        mon_host, members, bind = mon_addrs(address, ports), MON_ID, [f"public addr = {address}"]
    lines = [
        "[global]",
        f"fsid = {fsid}",
        f"mon host = {mon_host}",
        f"mon initial members = {members}",
        *bind,
        f"public network = {network}",
        "ms bind ipv6 = false",
        f"ms bind port min = {ports.bind_min}",
        f"ms bind port max = {ports.bind_max}",
        # cephx everywhere, as in production: no key, no access
        "auth cluster required = cephx",
        "auth service required = cephx",
        "auth client required = cephx",
        # daemons get $run_dir/ceph-$name.asok; "admin socket" stays unset (CLI clients would collide)
        f"run dir = {d}/run",
        f"pid file = {d}/run/$name.pid",
        f"log file = {d}/log/$name.log",
        f"crash dir = {d}/crash",
        f"mon data = {d}/data/mon.$id",
        f"mgr data = {d}/data/mgr.$id",
        f"osd data = {d}/data/osd.$id",
        "osd pool default size = 1",
        "osd pool default min size = 1",
        "osd pool default pg num = 8",
        "osd pool default pgp num = 8",
        "osd pool default pg autoscale mode = off",
        # replicas may share the single host
        "osd crush chooseleaf type = 0",
        "mon allow pool size one = true",
        "mon warn on pool no redundancy = false",
        "mon allow pool delete = true",
        # the default 30 % free warns (MON_DISK_LOW) on a development disk
        "mon data avail warn = 2",
        "mon data avail crit = 1",
        "mgr initial modules = iostat",
        # fresh PG stats for readiness checks
        "mgr stats period = 1",
        "auth allow insecure global id reclaim = false",
        # file OSDs count as hdd: no recovery sleep, more backfills
        "osd recovery sleep hdd = 0",
        "osd max backfills = 4",
        "osd mon report interval = 1",
        "mon osd reporter subtree level = osd",
        # commit map changes at once instead of batching them for 1 s, which makes snapshot
        # create/remove and pool create/init ~20x faster (1 s -> 0.05 s each)
        "paxos propose interval = 0.05",
        # a node that dies takes its monitor and OSD with it: notice in seconds, not tens
        # (monitor leases, elections, clients hunting for another monitor, OSD heartbeats)
        "mon lease = 1",
        "mon election timeout = 2",
        "mon client hunt interval = 0.5",
        "osd heartbeat interval = 1",
        "osd heartbeat grace = 5",
        "mon osd min down reporters = 1",
        # each daemon's key in its data directory; a client's (client.admin unless it
        # names another user) in keys/
        "[mon]",
        "keyring = $mon_data/keyring",
        "[mgr]",
        "keyring = $mgr_data/keyring",
        "[client]",
        f"keyring = {d}/{KEYS_DIR}/$cluster.$name.keyring",
        "[osd]",
        "keyring = $osd_data/keyring",
        "osd objectstore = bluestore",
        "bluestore block create = true",
        f"bluestore block size = {block_size}",
        "osd memory target = 1G",
    ]
    for mon_id, mon_address in monitors or ():
        lines += [f"[mon.{mon_id}]", f"public addr = {mon_address}"]
    return "\n".join(lines) + "\n"


def client_keyring(directory: Path, user: str) -> Path:
    """Where the keyring of client ``user`` (``client.admin``, ``client.pvc-api`` ...) is kept."""
    return directory / KEYS_DIR / f"ceph.{user}.keyring"


def create_keys(directory: Path, mgr_id: str = MGR_ID) -> Path:
    """Make the cluster's keys; returns the monitors' initial keyring (for ``ceph-mon --mkfs``).

    Every client (``client.admin`` and the PVC roles' users, see
    :data:`pvc.storage.cephx.ROLE_CAPS`) gets its keyring in ``keys/``, the manager in its
    data directory; all 0600, the API's 0640 with group ``pvcapi`` where that group exists.
    The initial keyring holds every key with its caps.
    """
    admin, mon, mgr = cephx.new_key(), cephx.new_key(), cephx.new_key()
    entries = [
        cephx.Entry("mon.", mon, cephx.MON_CAPS),
        cephx.Entry("client.admin", admin, cephx.ADMIN_CAPS),
        cephx.Entry(f"mgr.{mgr_id}", mgr, cephx.MGR_CAPS),
    ]
    cephx.write_keyring(client_keyring(directory, "client.admin"), [cephx.Entry("client.admin", admin)])
    cephx.write_keyring(directory / "data" / f"mgr.{mgr_id}" / "keyring", [cephx.Entry(f"mgr.{mgr_id}", mgr)])
    for role in cephx.ROLES:
        user, key = cephx.DEFAULT_USERS[role], cephx.new_key()
        entries.append(cephx.Entry(user, key, dict(cephx.ROLE_CAPS[role].items())))
        group = DEFAULT_API_USER if role == "api" else None  # the API account's group
        cephx.write_keyring(client_keyring(directory, user), [cephx.Entry(user, key)], group=group)
    return cephx.write_keyring(directory / MON_KEYRING, entries)


def make_monitors(directory: Path, conf: Path, monmap: Path, mon_ids: Sequence[str]) -> None:
    """Create each monitor's store from ``monmap`` and the keys of :func:`create_keys`."""
    keyring = create_keys(directory)
    try:
        for mon_id in mon_ids:
            argv = ["ceph-mon", "-c", str(conf), "--mkfs", "-i", mon_id, "--monmap", str(monmap)]
            daemons.run_tool([*argv, "--keyring", str(keyring)], conf)
    finally:
        keyring.unlink(missing_ok=True)


@dataclass
class LabCeph:
    """A running lab Ceph: where it lives and the daemons we started."""

    directory: Path
    fsid: str
    address: str
    ports: Ports
    processes: dict[str, ProcessRef] = field(default_factory=dict)
    osd_ids: list[int] = field(default_factory=list)
    die_with_parent: bool = False

    @property
    def conf_path(self) -> Path:
        """Path of the cluster's ceph.conf."""
        return self.directory / "ceph.conf"

    @property
    def pids(self) -> dict[str, int]:
        """PID of every daemon we started, by Ceph name (``mon.a``, ``osd.0`` ...)."""
        return {name: ref.pid for name, ref in self.processes.items()}

    def client(self, timeout: float = 20.0) -> CephClient:
        """A new connected client (``client.admin``); the caller closes it."""
        return CephClient(self.conf_path, timeout=timeout)

    def user(self, role: str) -> str:
        """The cephx user of PVC role ``role`` (``node``, ``api``, ``vm``)."""
        return cephx.DEFAULT_USERS[role]

    def keyring(self, role: str) -> Path:
        """The keyring of PVC role ``role``'s user."""
        return client_keyring(self.directory, self.user(role))

    def storage_config(self, role: str) -> dict[str, str]:
        """The ``storage`` config keys that make a node reach this cluster as role ``role``."""
        return {
            "ceph_conf": str(self.conf_path),
            "ceph_user": self.user(role),
            "ceph_keyring": str(self.keyring(role)),
        }

    def role_client(self, role: str, timeout: float = 20.0) -> CephClient:
        """A new client connected as PVC role ``role``'s user; the caller closes it."""
        return CephClient(self.conf_path, name=self.user(role), keyring=self.keyring(role), timeout=timeout)

    def stop(self, grace: float = 15.0) -> None:
        """Stop every daemon we started, OSDs first so the monitor records them down.

        Each group gets SIGTERM and, after ``grace`` seconds, SIGKILL; ``grace=0`` kills at
        once (a throwaway cluster). Daemons named by our pid files whose command line names
        our ceph.conf are stopped too (left over from an earlier run).
        """
        refs = list(self.processes.values())
        refs += [
            ref
            for ref in _pid_file_processes(self.directory, self.conf_path)
            if all(ref.pid != known.pid for known in refs)
        ]
        daemons.stop([ref for ref in refs if ref.name.startswith("osd.")], grace)
        daemons.stop([ref for ref in refs if not ref.name.startswith("osd.")], grace)
        self.processes.clear()

    def add_osd(self, *, start_out: bool = False, timeout: float = 60.0) -> int:
        """Create, start and wait for one more file-backed OSD (up; and in unless ``start_out``)."""
        with self.client() as client:
            osd = daemons.create_file_osd(
                self.conf_path,
                self.directory / "data",
                client=client,
                log_dir=self.directory / "log",
                die_with_parent=self.die_with_parent,
                start_out=start_out,
            )
            self.processes[f"osd.{osd.osd_id}"] = osd.process
            self.osd_ids.append(osd.osd_id)
            self._save()
            osds.wait_up(client, [osd.osd_id], timeout, require_in=not start_out)
        return osd.osd_id

    def remove_osd(self, osd_id: int, *, timeout: float = 300.0) -> None:
        """Drain, stop and purge one of our OSDs and delete its data."""
        with self.client() as client:
            daemons.remove_osd(
                client,
                osd_id,
                self.conf_path,
                process=self.processes.get(f"osd.{osd_id}"),
                data_dir=self.directory / "data",
                timeout=timeout,
            )
        self.processes.pop(f"osd.{osd_id}", None)
        if osd_id in self.osd_ids:
            self.osd_ids.remove(osd_id)
        self._save()

    def _save(self) -> None:
        state = {
            "fsid": self.fsid,
            "address": self.address,
            "ports": vars(self.ports),
            "osd_ids": self.osd_ids,
        }
        (self.directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def _pid_file_processes(directory: Path, conf_path: Path) -> list[ProcessRef]:
    """Live daemons named by the pid files in ``run/`` whose command line names our ceph.conf."""
    found = []
    for path in sorted((directory / "run").glob("*.pid")):
        ref = daemons.process_from_pid_file(path, conf_path)
        if ref is not None:
            found.append(ref)
    return found


def start(
    directory: str | Path,
    osd_count: int = 1,
    *,
    address: str = "127.0.0.1",
    ports: Ports | None = None,
    network: str | None = None,
    block_size: str = "10G",
    pool: str | None = "rbd",
    pool_pgs: int = 32,
    timeout: float = 120.0,
    die_with_parent: bool = False,
) -> LabCeph:
    """Create and start a new cluster in ``directory`` (which must hold no cluster yet).

    The monitor listens on ``address`` at ``ports``; see :func:`conf_text` for ``network``
    and ``block_size``. With ``pool`` an RBD pool of ``pool_pgs`` PGs is created (3
    copies/2 minimum with 3 or more OSDs, else one copy). Returns once the cluster is ready
    (see :func:`pvc.storage.status.readiness`); on failure every daemon started is stopped
    and the error says what was not ready. With ``die_with_parent`` the daemons get SIGTERM
    when the calling thread ends (the kernel ties the parent-death signal to the thread).
    """
    if osd_count < 1:
        raise ValueError("a lab Ceph needs at least one OSD")
    directory = Path(directory).resolve()
    if (directory / "ceph.conf").exists():
        raise StorageError(f"{directory} already holds a Ceph cluster; use restart()")
    for sub in ("data", "run", "log", "crash"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    lab = LabCeph(directory, str(uuid.uuid4()), address, ports or Ports(), die_with_parent=die_with_parent)
    lab.conf_path.write_text(
        conf_text(directory, lab.fsid, address, lab.ports, network=network, block_size=block_size)
    )
    lab._save()
    try:
        monmap = directory / "monmap"
        daemons.run_tool(
            [
                "monmaptool",
                "--create",
                "--fsid",
                lab.fsid,
                "--addv",
                MON_ID,
                mon_addrs(address, lab.ports),
                str(monmap),
            ],
            lab.conf_path,
        )
        make_monitors(directory, lab.conf_path, monmap, [MON_ID])
        _start_mon(lab, die_with_parent)
        _start_mgr(lab, die_with_parent)
        with lab.client() as client:
            # mkfs in parallel (~2.5 s each); daemons are started from this thread so that
            # die_with_parent ties them to it and not to a finished worker thread
            with ThreadPoolExecutor(max_workers=osd_count) as executor:
                futures = [
                    executor.submit(daemons.prepare_file_osd, lab.conf_path, directory / "data", client)
                    for _ in range(osd_count)
                ]
                prepared = [future.result() for future in futures]
            for osd in prepared:
                lab.osd_ids.append(osd.osd_id)
                lab.processes[f"osd.{osd.osd_id}"] = daemons.start_osd(
                    lab.conf_path,
                    osd.osd_id,
                    directory / "data",
                    directory / "log",
                    die_with_parent=die_with_parent,
                )
            lab._save()
            if pool:
                copies, minimum = (3, 2) if osd_count >= 3 else (1, 1)
                osds.wait_up(client, lab.osd_ids, timeout=timeout)
                pools.create(client, pool, pool_pgs, f"copies={copies},mincopies={minimum}")
            status.wait_ready(client, len(lab.osd_ids), timeout)
    except BaseException:
        lab.stop(grace=0)
        raise
    return lab


def restart(
    directory: str | Path, *, timeout: float = 120.0, die_with_parent: bool = False, require_pgs: bool = True
) -> LabCeph:
    """Start the daemons of an existing cluster in ``directory`` again and wait until ready."""
    directory = Path(directory).resolve()
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise StorageError(f"{directory} holds no lab Ceph ({STATE_FILE}: {exc})") from exc
    lab = LabCeph(
        directory, state["fsid"], state["address"], Ports(**state["ports"]), die_with_parent=die_with_parent
    )
    lab.osd_ids = [int(i) for i in state["osd_ids"]]
    running = _pid_file_processes(directory, lab.conf_path)
    if running:
        raise StorageError(f"Ceph in {directory} is still running: {', '.join(r.name for r in running)}")
    try:
        _start_mon(lab, die_with_parent)
        with lab.client() as client:
            # what the maps said before our daemons joined: a killed cluster still shows its
            # old manager available and its OSDs up until the monitor notices they are gone
            epoch = int(client.mon_command("osd dump")["epoch"])
            old_gid = client.mon_command("mgr dump").get("active_gid")
            _start_mgr(lab, die_with_parent)
            for osd_id in lab.osd_ids:
                lab.processes[f"osd.{osd_id}"] = daemons.start_osd(
                    lab.conf_path,
                    osd_id,
                    directory / "data",
                    directory / "log",
                    die_with_parent=die_with_parent,
                )
            deadline = time.monotonic() + timeout
            _wait_rejoined(client, lab.osd_ids, epoch, old_gid, deadline)
            remaining = max(1.0, deadline - time.monotonic())
            status.wait_ready(client, len(lab.osd_ids), remaining, require_pgs=require_pgs)
    except BaseException:
        lab.stop(grace=0)
        raise
    return lab


def _wait_rejoined(
    client: CephClient, osd_ids: Sequence[int], epoch: int, old_gid: int | None, deadline: float
) -> None:
    """Wait until a new manager is active and every OSD has booted after osdmap ``epoch``."""
    while True:
        pending = []
        mgr = client.mon_command("mgr dump")
        if not mgr.get("available") or mgr.get("active_gid") == old_gid:
            pending.append("manager not active yet")
        booted = {
            entry["osd"]
            for entry in client.mon_command("osd dump").get("osds", [])
            if entry.get("up") and int(entry.get("up_from", 0)) > epoch
        }
        pending += [f"osd.{osd_id} not booted" for osd_id in osd_ids if osd_id not in booted]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise StorageTimeout(f"Ceph not ready after restart: {'; '.join(pending)}")
        time.sleep(0.25)


def _start_mon(lab: LabCeph, die_with_parent: bool) -> None:
    lab.processes[f"mon.{MON_ID}"] = daemons.start_daemon(
        "mon", MON_ID, lab.conf_path, lab.directory / "log", die_with_parent=die_with_parent
    )


def _start_mgr(lab: LabCeph, die_with_parent: bool) -> None:
    (lab.directory / "data" / f"mgr.{MGR_ID}").mkdir(parents=True, exist_ok=True)
    lab.processes[f"mgr.{MGR_ID}"] = daemons.start_daemon(
        "mgr", MGR_ID, lab.conf_path, lab.directory / "log", die_with_parent=die_with_parent
    )


def destroy(lab: LabCeph, grace: float = 0.0) -> None:
    """Stop the cluster and remove its directory (a throwaway cluster)."""
    lab.stop(grace)
    shutil.rmtree(lab.directory, ignore_errors=True)
