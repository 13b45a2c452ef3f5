"""The lab cluster's API as its clients reach it: on the primary's floating upstream address,
with the lab's admin API key.

``pvc-lab up`` makes a random key (:func:`new_api_key`), writes it into every node's
configuration and registers the endpoint with the key as a CLI connection named after the
lab (:func:`connection_name`; see :mod:`pvc.lab.lab_connection`).
The lab (demo VMs, Ceph OSDs and pool), the benches and the lab tests all call it
through :func:`client`, which reads the key from the lab directory.
"""

from __future__ import annotations

import secrets
from typing import Any

from pvc import __version__
from pvc.client.connections import Connection
from pvc.client.errors import ApiError
from pvc.client.http import CONNECT_TIMEOUT, ApiClient, ApiResponse
from pvc.lab.layout import LabLayout
from pvc.lab.private_files import read_private, write_private

#: The name of the default lab's connection in the CLI's connection store; other labs get
#: names derived from it (:func:`connection_name`).
LAB_CONNECTION = "lab"
#: The prefix and net index of the default lab (``pvc-lab up`` without options).
DEFAULT_PREFIX, DEFAULT_NET_INDEX = "pvc", 0
USER_AGENT = f"pvc-lab/{__version__}"
#: Seconds a lab call may take to answer (none of the lab's own calls waits for a long task).
READ_TIMEOUT = 60.0
#: Random bytes of the lab's API key (43 URL-safe characters; keys need at least 32).
API_KEY_BYTES = 32
#: How every lab connection's description begins (how a lab's entry is told from a user's).
DESCRIPTION_PREFIX = "PVC lab in "


def new_api_key(layout: LabLayout) -> str:
    """Make and store (mode 0600) a fresh random admin API key for the lab."""
    key = secrets.token_urlsafe(API_KEY_BYTES)
    write_private(layout.api_key_file, key)
    return key


def api_key(layout: LabLayout) -> str | None:
    """The lab's admin API key (None before the first ``up``)."""
    return read_private(layout.api_key_file)


def connection_name(layout: LabLayout) -> str:
    """The lab's connection name: ``lab`` for the default lab; ``lab-<prefix>`` for another
    prefix, with ``-<net index>`` appended for a net index other than 0 (``lab-pvct-77``,
    ``lab-3``), so labs side by side each have their own."""
    name = LAB_CONNECTION if layout.prefix == DEFAULT_PREFIX else f"{LAB_CONNECTION}-{layout.prefix}"
    if layout.net_index != DEFAULT_NET_INDEX:
        name += f"-{layout.net_index}"
    return name


def description(layout: LabLayout) -> str:
    """The description of the lab's connection: names the lab's directory."""
    return f"{DESCRIPTION_PREFIX}{layout.directory}"


def connection(layout: LabLayout) -> Connection:
    """The lab's API endpoint, named by :func:`connection_name`, with its key."""
    return Connection(
        name=connection_name(layout),
        host=str(layout.floating("upstream").ip),
        port=layout.api_port,
        api_key=api_key(layout),
        description=description(layout),
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
