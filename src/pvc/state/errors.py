"""Errors raised by the state layer."""

from __future__ import annotations

from pvc.errors import PVCError


class StateError(PVCError):
    """A ZooKeeper operation failed in a way the caller should report."""


class NotConnectedError(StateError):
    """ZooKeeper could not be reached."""


class SchemaError(StateError):
    """The cluster's schema version cannot be handled by this code."""


class ConflictError(StateError):
    """A compare-and-set or transaction lost a race with another writer."""


class AccessDeniedError(StateError):
    """ZooKeeper's ACL refused an operation: a missing or different credential."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"ZooKeeper refused access to {path or 'a znode'}: this session lacks the credential "
            "the cluster's tree is restricted to (check zookeeper.auth and zookeeper.auth_file)"
        )
        self.path = path
