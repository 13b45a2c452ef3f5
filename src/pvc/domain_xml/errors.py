"""The one error of the domain XML package."""

from __future__ import annotations

from pvc.errors import PVCError


class DomainXMLError(PVCError, ValueError):
    """Domain XML (or a change to it) that PVC will not accept; ``str()`` says what to fix in one line."""
