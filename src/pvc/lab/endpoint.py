"""The lab cluster's API as its clients reach it: on the primary's floating upstream address,
with the lab's admin API key.

``pvc-lab up`` makes a random key (:func:`new_api_key`), writes it into every node's
configuration and registers the endpoint with the key as the CLI's connection ``lab``.
The lab (demo VMs, Ceph OSDs and pool), the benches and the lab tests all call it
through :func:`client`, which reads the key from the lab directory.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from pvc import __version__
from pvc.client.connections import Connection
from pvc.client.errors import ApiError
from pvc.client.http import CONNECT_TIMEOUT, ApiClient, ApiResponse
from pvc.lab.layout import LabLayout

#: The name of the lab's connection in the CLI's connection store.
LAB_CONNECTION = "lab"
USER_AGENT = f"pvc-lab/{__version__}"
#: Seconds a lab call may take to answer (none of the lab's own calls waits for a long task).
READ_TIMEOUT = 60.0
#: Random bytes of the lab's API key (43 URL-safe characters; keys need at least 32).
API_KEY_BYTES = 32


def new_api_key(layout: LabLayout) -> str:
    """Make and store (mode 0600) a fresh random admin API key for the lab."""
    key = secrets.token_urlsafe(API_KEY_BYTES)
    path = layout.api_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def api_key(layout: LabLayout) -> str | None:
    """The lab's admin API key (None before the first ``up``)."""
    try:
        return layout.api_key_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def connection(layout: LabLayout) -> Connection:
    """The lab's API endpoint, named ``lab``, with its key."""
    return Connection(
        name=LAB_CONNECTION,
        host=str(layout.floating("upstream").ip),
        port=layout.api_port,
        api_key=api_key(layout),
        description=f"PVC lab in {layout.directory}",
    )


def client(
    layout: LabLayout,
    read_timeout: float = READ_TIMEOUT,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    get_attempts: int | None = None,
) -> ApiClient:
    """A client of the lab's API whose calls may take up to ``read_timeout`` seconds to answer
    (``connect_timeout`` and ``get_attempts`` as :class:`ApiClient` takes them)."""
    return ApiClient(
        connection(layout),
        user_agent=USER_AGENT,
        timeout=(connect_timeout, read_timeout),
        get_attempts=get_attempts,
    )


def accepted(reply: ApiResponse, what: str) -> Any:
    """The data of a 200 or 202 reply; otherwise :class:`ApiError` ``"<what>: <status> <message>"``."""
    if reply.status not in (200, 202):
        raise ApiError(f"{what}: {reply.status} {reply.message}", reply.status)
    return reply.data
