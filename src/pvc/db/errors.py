"""Errors of the database layer."""

from __future__ import annotations

from pvc.errors import PVCError


class DatabaseUnavailable(PVCError):
    """No database member can be reached (none runs, or none accepts writes yet)."""
