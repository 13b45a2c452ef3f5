"""The lab cluster's API as its clients reach it: on the primary's floating upstream address.

The lab (demo VMs, Ceph OSDs and pool), the benches and the lab tests all call it through
:func:`client`; ``pvc-lab up`` registers the same endpoint as the CLI's connection ``lab``.
"""

from __future__ import annotations

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


def connection(layout: LabLayout) -> Connection:
    """The lab's API endpoint, named ``lab``."""
    return Connection(
        name=LAB_CONNECTION,
        host=str(layout.floating("upstream").ip),
        port=layout.api_port,
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
