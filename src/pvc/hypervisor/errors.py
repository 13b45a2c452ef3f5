"""Errors of the hypervisor adapter."""

from __future__ import annotations

from pvc.errors import PVCError


class HypervisorError(PVCError):
    """A libvirt operation failed."""
