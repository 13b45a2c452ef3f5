"""How the domain library reaches Ceph: one shared client per process, and error mapping.

The API (on the primary) and each node daemon's task workers hold one
:class:`StorageAccess` built from the node's ``storage`` config section. The client
connects on first use and reconnects after a failure. A node without storage configured
refuses storage writes with a 400 saying so; a Ceph that cannot be reached gives a 503.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pvc.cluster.errors import ClusterError, Conflict, NotFoundError
from pvc.config import StorageSection
from pvc.storage.client import CephClient
from pvc.storage.errors import StorageBusy, StorageError, StorageExists, StorageNotFound, StorageTimeout


class StorageUnavailable(ClusterError):
    """Ceph is not configured here or cannot be reached (HTTP 503)."""

    status = 503


class StorageConflict(Conflict):
    """The storage object is in use (HTTP 409)."""


class StorageAccess:
    """A lazily connected :class:`CephClient` shared by the threads of one process."""

    def __init__(self, settings: StorageSection | None = None) -> None:
        self.settings = settings or StorageSection()
        self._lock = threading.Lock()
        self._client: CephClient | None = None

    @property
    def configured(self) -> bool:
        """True when this node has a ceph.conf to reach Ceph with."""
        return self.settings.ceph_conf is not None

    @property
    def conf_path(self) -> str:
        """The ceph.conf path (ClusterError when not configured)."""
        if self.settings.ceph_conf is None:
            raise ClusterError("Ceph storage is not configured on this node (storage.ceph_conf)")
        return str(self.settings.ceph_conf)

    def client(self) -> CephClient:
        """The connected client; ClusterError if Ceph is not configured, StorageUnavailable if unreachable."""
        conf = self.conf_path
        with self._lock:
            if self._client is None:
                try:
                    self._client = CephClient(
                        conf,
                        name=self.settings.ceph_user,
                        keyring=self.settings.ceph_keyring,
                        timeout=self.settings.command_timeout,
                    )
                except StorageError as error:
                    raise StorageUnavailable(f"Ceph cannot be reached: {error}") from None
            return self._client

    def reset(self) -> None:
        """Drop the client (after a connection failure); the next call reconnects."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    close = reset


@contextmanager
def mapped_errors(access: StorageAccess | None = None) -> Iterator[None]:
    """Turn adapter errors into domain errors with HTTP statuses.

    Unknown objects → 404, existing names and bad values → 400, objects in use → 409,
    Ceph not answering → 503 (and the shared client is dropped so the next call
    reconnects).
    """
    try:
        yield
    except StorageNotFound as error:
        raise NotFoundError(str(error)) from None
    except StorageExists as error:
        raise ClusterError(str(error)) from None
    except StorageBusy as error:
        raise StorageConflict(str(error)) from None
    except StorageTimeout as error:
        if access is not None:
            access.reset()
        raise StorageUnavailable(f"Ceph did not answer in time: {error}") from None
    except StorageError as error:
        raise ClusterError(str(error)) from None
    except ValueError as error:
        raise ClusterError(str(error)) from None
