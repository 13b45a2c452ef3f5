"""Errors of the hypervisor adapter."""

from __future__ import annotations

from pvc.errors import PVCError


class HypervisorError(PVCError):
    """A libvirt operation failed."""


class DomainXMLError(HypervisorError):
    """Domain XML that PVC will not accept; the message says what to fix."""
