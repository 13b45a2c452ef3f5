"""A connection to a Ceph cluster: librados handle, monitor/manager commands, pool I/O contexts.

One :class:`CephClient` may be shared by several threads: librados handles and the
I/O contexts it hands out are thread-safe, and every call here is bounded by the
client's timeouts (``rados_osd_op_timeout``, ``rados_mon_op_timeout``,
``client_mount_timeout``), so nothing can block forever, not even a write to a full
cluster or a command to a cluster that has lost its monitors.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rados

from pvc.storage.errors import StorageError, StorageNotFound, error_for, translated

#: Seconds any single librados operation (monitor command, object I/O, connect) may take.
DEFAULT_TIMEOUT = 20.0


class CephClient:
    """A connected librados handle with PVC's error mapping and timeouts.

    ``conffile`` is the cluster's ceph.conf; ``name`` a client name such as
    ``"client.admin"`` and ``keyring`` a keyring path when cephx is in use. The
    connection is opened at construction unless ``connect=False``.
    """

    def __init__(
        self,
        conffile: str | Path,
        *,
        name: str | None = None,
        keyring: str | Path | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect: bool = True,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.conffile = str(conffile)
        self.name = name
        self.timeout = timeout
        settings = {
            "rados_osd_op_timeout": _seconds(timeout),
            "rados_mon_op_timeout": _seconds(timeout),
            "client_mount_timeout": _seconds(timeout),
        }
        if keyring is not None:
            settings["keyring"] = str(keyring)
        self._lock = threading.Lock()
        self._cluster: rados.Rados | None = None
        self._settings = settings
        if connect:
            self.connect()

    def __enter__(self) -> CephClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection (no-op when already connected)."""
        with self._lock:
            if self._cluster is not None:
                return
            kwargs: dict[str, Any] = {"conffile": self.conffile, "conf": dict(self._settings)}
            if self.name:
                kwargs["name"] = self.name
            with translated(f"connect to Ceph ({self.conffile})"):
                cluster = rados.Rados(**kwargs)
                try:
                    cluster.connect(timeout=int(max(1, self.timeout)))
                except BaseException:
                    cluster.shutdown()
                    raise
            self._cluster = cluster

    def close(self) -> None:
        """Close the connection; I/O contexts opened from it become unusable."""
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.shutdown()

    @property
    def connected(self) -> bool:
        """True between connect() and close()."""
        return self._cluster is not None

    @property
    def cluster(self) -> rados.Rados:
        """The underlying ``rados.Rados`` handle."""
        cluster = self._cluster
        if cluster is None:
            raise StorageError("not connected to Ceph")
        return cluster

    def fsid(self) -> str:
        """The cluster's fsid."""
        with translated("read the cluster fsid"):
            return self.cluster.get_fsid()

    def mon_command(self, prefix: str, /, *, inbuf: bytes = b"", **args: Any) -> Any:
        """Run a monitor command and return its parsed JSON output (None when it prints nothing).

        ``prefix`` is the command (``"osd pool ls"``), ``args`` its arguments as Ceph names
        them (``pool="rbd"``); ``None`` values are left out. Commands served by the manager
        (``osd df``, ``pg dump`` ...) are forwarded by the monitor.
        """
        command = _command(prefix, args)
        with translated(f"ceph {prefix}"):
            ret, out, status = self.cluster.mon_command(json.dumps(command), inbuf)
        return _result(prefix, ret, out, status)

    def mgr_command(self, prefix: str, /, *, inbuf: bytes = b"", **args: Any) -> Any:
        """Run a manager command and return its parsed JSON output (None when it prints nothing)."""
        command = _command(prefix, args)
        with translated(f"ceph {prefix}"):
            ret, out, status = self.cluster.mgr_command(json.dumps(command), inbuf)
        return _result(prefix, ret, out, status)

    def osd_command(self, osd_id: int, prefix: str, /, *, timeout: float | None = None, **args: Any) -> Any:
        """Run a command on one OSD (``ceph tell osd.N ...``); its parsed JSON output.

        ``timeout`` (seconds, default the client's) bounds the wait for an OSD that is
        marked up but does not answer.
        """
        command = _command(prefix, args)
        seconds = int(_seconds(timeout if timeout is not None else self.timeout))
        with translated(f"ceph tell osd.{osd_id} {prefix}"):
            ret, out, status = self.cluster.osd_command(osd_id, json.dumps(command), b"", timeout=seconds)
        return _result(prefix, ret, out, status)

    def refresh_osdmap(self) -> None:
        """Fetch the newest OSD map, so that pool lookups see pools created or deleted just now.

        librados answers pool lookups from its cached map, which a monitor command that
        changed the map does not update.
        """
        with translated("fetch the latest OSD map"):
            self.cluster.wait_for_latest_osdmap()

    def pool_exists(self, pool: str) -> bool:
        """True if the pool exists (checked against the newest OSD map)."""
        self.refresh_osdmap()
        with translated(f"look up pool {pool}"):
            return self.cluster.pool_exists(pool)

    @contextmanager
    def ioctx(self, pool: str) -> Iterator[rados.Ioctx]:
        """An I/O context on ``pool`` for the duration of the block; StorageNotFound if it does not exist."""
        with translated(f"open pool {pool}"):
            try:
                handle = self.cluster.open_ioctx(pool)
            except rados.ObjectNotFound as exc:
                raise StorageNotFound(f"pool {pool} does not exist") from exc
        try:
            yield handle
        finally:
            handle.close()


def _seconds(timeout: float) -> str:
    return str(max(1, round(timeout)))


def _command(prefix: str, args: dict[str, Any]) -> dict[str, Any]:
    command: dict[str, Any] = {"prefix": prefix, "format": "json"}
    command.update({key: value for key, value in args.items() if value is not None})
    return command


def _result(prefix: str, ret: int, out: bytes, status: str) -> Any:
    if ret != 0:
        message = status.strip() or f"ceph {prefix} failed"
        raise error_for(ret, message)
    if not out.strip():
        return None
    try:
        return json.loads(out)
    except ValueError:
        return out.decode(errors="replace")
