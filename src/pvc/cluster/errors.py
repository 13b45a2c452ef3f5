"""Errors of the domain library, and how every error a client may cause reads to it."""

from __future__ import annotations

from pvc.db.errors import DatabaseConflict, DatabaseRejected, DatabaseUnavailable
from pvc.errors import PVCError
from pvc.state.errors import ConflictError, StateError
from pvc.tasks.errors import InvalidTaskError, TaskNotFoundError


class ClusterError(PVCError):
    """A request the cluster cannot carry out as asked (HTTP 400)."""

    status = 400


class NotFoundError(ClusterError):
    """The named object does not exist (HTTP 404)."""

    status = 404


class WaitTimeout(ClusterError):
    """A ``wait`` request ran out of time; the request itself stands (HTTP 409)."""

    status = 409


class NotYetDone(ClusterError):
    """A ``wait`` request's time ran out; the change was accepted and goes on (HTTP 202).

    ``request`` is the reply the change had without ``wait``; ``waited`` the seconds waited.
    """

    status = 202

    def __init__(self, request: str, waited: float, what: str) -> None:
        super().__init__(f"{request}; not finished after {waited:g} s waiting for {what}; it goes on")
        self.request = request
        self.waited = waited
        self.what = what


class Conflict(ClusterError):
    """The request collides with the cluster's current state (HTTP 409)."""

    status = 409


def client_reply(error: PVCError) -> tuple[int, str] | None:
    """How ``error`` reads to a client: its HTTP status and one-line message.

    Domain errors carry their own status; the state store's errors become 409 (a lost
    race: retry) or 503 (ZooKeeper unavailable). None for an error that is not the
    client's business (a bug): the caller answers 500.
    """
    if isinstance(error, ClusterError):
        return error.status, str(error)
    if isinstance(error, ConflictError):
        return 409, f"The request lost a race with another change; retry it ({error})"
    if isinstance(error, StateError):
        return 503, f"The cluster state store is unavailable: {error}"
    if isinstance(error, DatabaseConflict):
        return 409, f"The request collided with another change; retry it ({error})"
    if isinstance(error, DatabaseRejected):
        return 400, f"The database refused a value: {error}"
    if isinstance(error, DatabaseUnavailable):
        return 503, f"The provisioner database is unavailable: {error}"
    if isinstance(error, InvalidTaskError):
        return 400, str(error)
    if isinstance(error, TaskNotFoundError):
        return 404, str(error)
    return None
