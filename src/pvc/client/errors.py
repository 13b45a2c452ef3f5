"""The errors a PVC API client raises; each one's ``str()`` is a single line fit to show a user."""

from __future__ import annotations

from pvc.errors import PVCError


class ClientError(PVCError):
    """Base class of every error of :mod:`pvc.client`."""


class ApiUnreachable(ClientError):
    """The API could not be reached (refused, timed out, TLS or DNS failure)."""


class ApiError(ClientError):
    """The API answered with a status the caller does not accept; ``str()`` is the API's message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class TaskTimeout(ClientError):
    """A task did not finish within the time the caller allowed."""


class ConnectionStoreError(ClientError):
    """A connection cannot be found, read or saved in the client's connection store."""
