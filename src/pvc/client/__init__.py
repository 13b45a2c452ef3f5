"""A client of the PVC API, for anything that talks to a cluster over HTTP.

* :mod:`pvc.client.connections`: the connection store (``pvc.json``) and :class:`Connection`;
* :mod:`pvc.client.http`: :class:`ApiClient` (calls, retries, streamed uploads) and :class:`ApiResponse`;
* :mod:`pvc.client.waiters`: waiting for tasks and node state changes, following logs;
* :mod:`pvc.client.errors`: what goes wrong, each error one line fit to show a user.

Nothing here prints: the CLI, the lab and other callers show progress through callbacks.
"""

from pvc.client.connections import Connection
from pvc.client.errors import ApiError, ApiUnreachable, ClientError, ConnectionStoreError, TaskTimeout
from pvc.client.http import ApiClient, ApiResponse

__all__ = [
    "ApiClient",
    "ApiError",
    "ApiResponse",
    "ApiUnreachable",
    "ClientError",
    "Connection",
    "ConnectionStoreError",
    "TaskTimeout",
]
