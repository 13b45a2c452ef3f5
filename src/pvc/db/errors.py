"""Errors of the database layer."""

from __future__ import annotations

from pvc.errors import PVCError


class DatabaseUnavailable(PVCError):
    """No database member can be reached (none runs, or none accepts writes yet)."""


class DatabaseConflict(PVCError):
    """A change collided with another made at the same time (a unique name taken meanwhile,
    a row another change still refers to): nothing was written; retrying sees the new state."""


class DatabaseRejected(PVCError):
    """The database refused a value (out of its column's range, say) that validation let
    through: the request was wrong, nothing was written."""
