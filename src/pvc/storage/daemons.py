"""Starting and stopping Ceph daemons we own: monitors, managers and file-backed OSDs.

Daemons run in the foreground (``-f``) as children of the caller, so their PID is known
from the start and they are reaped promptly; each still writes the pid file its
ceph.conf names. The rest of :mod:`pvc.storage` works without this module.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pvc import commands, processes
from pvc.commands import CommandError
from pvc.processes import ProcessRef
from pvc.storage import cephx, osds, status
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageError, StorageNotFound, StorageTimeout, tool_error

#: Seconds ``ceph-osd --mkfs`` / ``ceph-mon --mkfs`` may take (a file OSD needs ~2.5 s).
MKFS_TIMEOUT = 120.0


@dataclass(frozen=True)
class OsdProcess:
    """A running OSD we created: its id, its uuid and its process."""

    osd_id: int
    uuid: str
    process: ProcessRef

    @property
    def pid(self) -> int:
        """The OSD's PID."""
        return self.process.pid


def daemon_command(kind: str, ident: str | int, conf_path: str | Path, *extra: str) -> list[str]:
    """The foreground command line of daemon ``kind`` (mon, mgr, osd) number/name ``ident``."""
    return [f"ceph-{kind}", "-f", "-c", str(conf_path), "-i", str(ident), *extra]


def start_daemon(
    kind: str,
    ident: str | int,
    conf_path: str | Path,
    log_dir: str | Path,
    *,
    extra: Sequence[str] = (),
    die_with_parent: bool = False,
) -> ProcessRef:
    """Start ``ceph-<kind> -i <ident>`` in the foreground; its stdout/stderr go to ``log_dir``.

    With ``die_with_parent`` the daemon gets SIGTERM when the calling thread ends (the
    kernel's parent-death signal follows the thread that started the child, not the
    process): start long-lived daemons from a thread that lives as long as they should.
    """
    name = f"{kind}.{ident}"
    env = {**os.environ, "CEPH_CONF": str(conf_path)}
    return processes.spawn(
        name,
        daemon_command(kind, ident, conf_path, *extra),
        Path(log_dir) / f"{name}.out",
        env=env,
        die_with_parent=die_with_parent,
    )


def run_tool(argv: Sequence[str], conf_path: str | Path, timeout: float = MKFS_TIMEOUT) -> str:
    """Run a Ceph tool to completion with ``CEPH_CONF`` set; StorageError with its output on failure."""
    env = {**os.environ, "CEPH_CONF": str(conf_path)}
    try:
        return commands.run(argv, timeout=timeout, env=env).stdout
    except CommandError as exc:
        raise tool_error(
            exc,
            failed=f"{' '.join(argv[:4])} failed ({exc.returncode}): {exc.tail(5)}",
            timed_out=f"{argv[0]} did not finish within {timeout:.0f} s",
        ) from exc


def pid_file(conf_path: str | Path, name: str) -> Path | None:
    """The pid file path ceph.conf gives daemon ``name`` (e.g. ``osd.3``), None if it sets none."""
    try:
        out = run_tool(
            ["ceph-conf", "-c", str(conf_path), "--name", name, "--lookup", "pid_file"], conf_path, 10
        )
    except StorageError:
        return None
    value = out.strip()
    return Path(value) if value else None


def process_from_pid_file(path: Path, conf_path: str | Path | None = None) -> ProcessRef | None:
    """The live process a pid file names, None if it is gone or (with ``conf_path``) not ours.

    A process counts as ours when its command line names ``conf_path``.
    """
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if conf_path is not None and str(conf_path).encode() not in argv:
        return None
    started = processes.start_time_of(pid)
    if started is None:
        return None
    ref = ProcessRef(name=path.stem, pid=pid, start_time=started)
    return ref if processes.is_alive(ref) else None


def stop(refs: Sequence[ProcessRef], grace: float = 15.0) -> None:
    """SIGTERM the daemons, SIGKILL whatever is still alive after ``grace`` seconds."""
    if grace <= 0:
        for ref in refs:
            processes.send(ref, signal.SIGKILL)
        processes.wait_gone(refs, 5.0)
        return
    processes.terminate(refs, timeout=grace)


def db_file(osd_data: Path) -> Path:
    """Where a file-backed OSD keeps its dedicated DB device: ``<data_dir>/osd-db/osd.<id>``."""
    return osd_data.parent / "osd-db" / osd_data.name


def mkfs_osd(
    conf_path: str | Path, osd_id: int, osd_uuid: str, osd_data: Path, *, db_size: int | None = None
) -> None:
    """Create a BlueStore OSD in ``osd_data`` (the block file is created there by ceph-osd).

    With ``db_size`` (bytes) its RocksDB goes to a dedicated DB device of that size, a file
    at :func:`db_file` that ``osd_data/block.db`` links to (on a server: a logical volume
    in the OSD DB volume group).
    """
    osd_data.mkdir(parents=True, exist_ok=True)
    argv = ["ceph-osd", "-c", str(conf_path), "-i", str(osd_id), "--mkfs", "--osd-uuid", osd_uuid]
    argv += ["--osd-data", str(osd_data)]
    if db_size is not None:
        if db_size <= 0:
            raise StorageError(f"invalid OSD DB size {db_size}")
        db = db_file(osd_data)
        db.parent.mkdir(parents=True, exist_ok=True)
        db.unlink(missing_ok=True)
        argv += ["--bluestore-block-db-path", str(db), "--bluestore-block-db-create", "true"]
        argv += ["--bluestore-block-db-size", str(db_size)]
    run_tool(argv, conf_path)


def block_size(conf_path: str | Path) -> int:
    """The size in bytes of a new file-backed OSD's block file (``bluestore block size``)."""
    argv = ["ceph-osd", "-c", str(conf_path), "-i", "0", "--show-config-value", "bluestore_block_size"]
    text = run_tool(argv, conf_path).strip()
    try:
        return int(text)
    except ValueError as exc:
        raise StorageError(f"unexpected bluestore_block_size {text!r}") from exc


def start_osd(
    conf_path: str | Path,
    osd_id: int,
    data_dir: str | Path,
    log_dir: str | Path,
    *,
    die_with_parent: bool = False,
) -> ProcessRef:
    """Start an existing OSD whose data is ``data_dir/osd.<id>``."""
    osd_data = Path(data_dir) / f"osd.{osd_id}"
    if not (osd_data / "fsid").exists():
        raise StorageNotFound(f"no OSD data in {osd_data}")
    return start_daemon(
        "osd",
        osd_id,
        conf_path,
        log_dir,
        extra=("--osd-data", str(osd_data)),
        die_with_parent=die_with_parent,
    )


@dataclass(frozen=True)
class PreparedOsd:
    """An OSD registered with the cluster and formatted, not yet started."""

    osd_id: int
    uuid: str
    osd_data: Path


def prepare_file_osd(
    conf_path: str | Path,
    data_dir: str | Path,
    client: CephClient,
    *,
    start_out: bool = False,
    osd_id: int | None = None,
    db_size: int | None = None,
) -> PreparedOsd:
    """Register a new OSD id and create its BlueStore (a sparse block file) in ``data_dir/osd.<id>``.

    Ceph registers a new OSD "in"; with ``start_out`` it is kept out (see
    :func:`pvc.storage.osds.keep_out`), so it takes no data until marked in. Safe to run in
    a worker thread (nothing is started). On failure the id is purged and the data removed
    again. With ``osd_id`` a destroyed OSD's id is reused (a replacement); with ``db_size``
    it gets a dedicated DB device (see :func:`mkfs_osd`). The OSD gets a new cephx key,
    registered with ``osd new`` and written to ``osd.<id>/keyring`` (mode 0600).
    """
    osd_uuid = str(uuidlib.uuid4())
    secret = cephx.new_key()
    osd_id = osds.new_id(client, osd_uuid, osd_id, secret=secret)
    osd_data = Path(data_dir) / f"osd.{osd_id}"
    remove_osd_files(osd_data)  # a replaced OSD's old data
    try:
        # the OSD's own key, where ceph.conf's "keyring = $osd_data/keyring" finds it
        cephx.write_keyring(osd_data / "keyring", [cephx.Entry(f"osd.{osd_id}", secret)])
        if start_out:
            osds.keep_out(client, osd_id)
        mkfs_osd(conf_path, osd_id, osd_uuid, osd_data, db_size=db_size)
    except BaseException:
        discard_osd(client, osd_id, osd_data)
        raise
    return PreparedOsd(osd_id, osd_uuid, osd_data)


def discard_osd(client: CephClient, osd_id: int, osd_data: Path) -> None:
    """Undo a half-created OSD: purge its id and remove its data directory."""
    osds.purge(client, osd_id)
    remove_osd_files(osd_data)


def remove_osd_files(osd_data: Path) -> None:
    """Remove a file-backed OSD's data directory and its DB device, if it has one."""
    shutil.rmtree(osd_data, ignore_errors=True)
    db_file(osd_data).unlink(missing_ok=True)


def create_file_osd(
    conf_path: str | Path,
    data_dir: str | Path,
    *,
    client: CephClient | None = None,
    log_dir: str | Path | None = None,
    die_with_parent: bool = False,
    start_out: bool = False,
    osd_id: int | None = None,
    db_size: int | None = None,
) -> OsdProcess:
    """Register, format and start a file-backed BlueStore OSD; returns its id and process.

    The OSD's data (and its sparse block file) lives in ``data_dir/osd.<id>``. On any
    failure the new id is purged from the cluster and its data removed, so nothing is left
    half-created. With ``start_out`` it joins "out" and takes no data until marked in; with
    ``db_size`` it gets a dedicated DB device (see :func:`mkfs_osd`).
    Wait for it with :func:`pvc.storage.osds.wait_up`; see :func:`start_daemon` for
    ``die_with_parent``.
    """
    own_client = client is None
    if client is None:
        client = CephClient(conf_path)
    try:
        prepared = prepare_file_osd(
            conf_path, data_dir, client, start_out=start_out, osd_id=osd_id, db_size=db_size
        )
        try:
            ref = start_osd(
                conf_path, prepared.osd_id, data_dir, log_dir or data_dir, die_with_parent=die_with_parent
            )
        except BaseException:
            discard_osd(client, prepared.osd_id, prepared.osd_data)
            raise
        return OsdProcess(osd_id=prepared.osd_id, uuid=prepared.uuid, process=ref)
    finally:
        if own_client:
            client.close()


def wait_safe_to_destroy(client: CephClient, osd_id: int, timeout: float) -> None:
    """Wait until no PG needs the (out) OSD's data any more; StorageTimeout after ``timeout``."""
    deadline = time.monotonic() + timeout
    # safe-to-destroy answers from PG statistics, which lag behind the out
    status.wait_fresh_pg_stats(client, timeout)
    while not osds.safe_to_destroy(client, osd_id):
        if time.monotonic() > deadline:
            raise StorageTimeout(f"osd.{osd_id} is still not safe to destroy after {timeout:.0f} s")
        time.sleep(0.5)


def remove_osd(
    client: CephClient,
    osd_id: int,
    conf_path: str | Path,
    *,
    process: ProcessRef | None = None,
    data_dir: str | Path | None = None,
    timeout: float = 300.0,
    grace: float = 15.0,
) -> None:
    """Take an OSD out of the cluster for good: out, wait until safe to destroy, stop, purge.

    The daemon is found by ``process`` or else by the pid file its ceph.conf names (only if
    its command line names ``conf_path``). With ``data_dir`` its ``osd.<id>`` directory is
    (and DB device) removed afterwards. StorageTimeout if the data has not drained within ``timeout``.
    """
    osds.get(client, osd_id)
    osds.set_out(client, [osd_id])
    wait_safe_to_destroy(client, osd_id, timeout)
    if process is None:
        path = pid_file(conf_path, f"osd.{osd_id}")
        process = process_from_pid_file(path, conf_path) if path else None
    if process is not None:
        stop([process], grace)
    osds.purge(client, osd_id)
    if data_dir is not None:
        remove_osd_files(Path(data_dir) / f"osd.{osd_id}")
