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
