"""Errors of the domain library; the API maps them to HTTP status codes."""

from __future__ import annotations

from pvc.errors import PVCError


class ClusterError(PVCError):
    """A request the cluster cannot carry out as asked (HTTP 400)."""

    status = 400


class NotFoundError(ClusterError):
    """The named object does not exist (HTTP 404)."""

    status = 404


class WaitTimeout(ClusterError):
    """A ``wait`` request ran out of time; the request itself stands (HTTP 409)."""

    status = 409
