"""HTTP calls to the PVC API, the way PVC v1 clients make them.

* URL ``{scheme}://{host}:{port}/api/v1{path}``; headers ``User-Agent`` (``pvc-client-cli/<version>``
  unless the caller names another agent) and ``X-Api-Key`` when the connection has a key.
* Arguments go in the query string; bulky values (documents, XML) go as a form-encoded body. A list
  value becomes a repeated key. A file is uploaded as a streamed ``multipart/form-data`` body.
* GET is tried up to three times on connection errors or a 429/500/502/503/504 reply; other methods
  are tried once. Connecting times out after about two seconds; reading may take up to 48 hours
  (some calls block until a cluster operation finishes).
* A failure to reach the API raises :class:`ApiUnreachable` with a short, single-line reason.

The module attributes below are the defaults (tests may shorten them); a client may be given its
own timeouts and GET attempts.
"""

from __future__ import annotations

import errno
import json
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from pvc import __version__
from pvc.client.connections import Connection
from pvc.client.errors import ApiError, ApiUnreachable
from pvc.client.multipart import UPLOAD_FIELD, MultipartFileBody

USER_AGENT = f"pvc-client-cli/{__version__}"
CONNECT_TIMEOUT = 2.05
READ_TIMEOUT = 172800.0
GET_ATTEMPTS = 3
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_BACKOFF = 0.25  # seconds, multiplied by the attempt number

Params = Mapping[str, Any] | None


@dataclass
class ApiResponse:
    """A reply from the API: status code and the decoded JSON body (None if the body is not JSON)."""

    status: int
    data: Any
    text: str

    @property
    def message(self) -> str:
        """The reply's ``message`` as one line (validation errors arrive as an object of messages)."""
        data = self.data
        if isinstance(data, dict) and "message" in data:
            message = data["message"]
            if isinstance(message, dict):
                return "; ".join(f"{key}: {value}" for key, value in message.items())
            return str(message)
        text = " ".join(self.text.split())
        if text:
            return f"API replied with HTTP {self.status}: {text[:200]}"
        return f"API replied with HTTP {self.status}"

    def expect(self, *statuses: int) -> Any:
        """Return the data if the status is one of ``statuses`` (default 200), else raise ApiError."""
        if self.status not in (statuses or (200,)):
            raise ApiError(self.message, self.status)
        return self.data

    def expect_one(self, what: str) -> dict[str, Any]:
        """The single object of an element GET (a one-element list, or a bare object); else ApiError."""
        data = self.expect(200)
        if isinstance(data, list):
            if len(data) != 1 or not isinstance(data[0], dict):
                raise ApiError(f"{what} not found", 404)
            return data[0]
        if not isinstance(data, dict):
            raise ApiError(f"{what}: unexpected reply from the API", self.status)
        return data


def _clean_params(params: Params) -> dict[str, Any] | None:
    """Drop None values; turn booleans into ``true``/``false`` and tuples into lists (repeated keys)."""
    if not params:
        return None
    cleaned: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            cleaned[key] = "true" if value else "false"
        elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
            cleaned[key] = list(value)
        else:
            cleaned[key] = value
    return cleaned


def segment(value: object) -> str:
    """Quote one path segment (a node name, a fault ID...) for use in an API path."""
    return quote(str(value), safe="")


def describe_failure(exc: BaseException) -> str:
    """A short reason for a connection-level failure (no urllib3 pool noise)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error (use PVC_CLIENT_VERIFY_SSL=False to skip certificate checks)"
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ReadTimeout):
        return "timed out"
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.errno:
            if item.errno == errno.ECONNREFUSED:
                return "connection refused"
            return (item.strerror or str(item)).lower()
        if "Name or service not known" in str(item) or "nodename nor servname" in str(item):
            return "unknown host name"
        pending.extend(
            [item.__cause__, item.__context__, *[a for a in item.args if isinstance(a, BaseException)]]
        )
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return type(exc).__name__


class ApiClient:
    """Sends requests to one connection's API.

    ``debug_log`` receives a line per call (endpoint, status, headers); ``user_agent`` replaces the
    CLI's agent string; ``verify`` overrides the connection's TLS check (False, True, or the path of
    a CA bundle); ``timeout`` is ``(connect, read)`` in seconds and ``get_attempts`` how often a GET
    is tried (both default to the module's settings).
    """

    def __init__(
        self,
        connection: Connection,
        debug_log: Callable[[str], None] | None = None,
        session: requests.Session | None = None,
        *,
        user_agent: str = USER_AGENT,
        verify: bool | str | None = None,
        timeout: tuple[float, float] | None = None,
        get_attempts: int | None = None,
    ) -> None:
        self.connection = connection
        self.debug_log = debug_log
        self.session = session or requests.Session()
        self.user_agent = user_agent
        self.verify = connection.verify_ssl if verify is None else verify
        self.timeout = timeout
        self.get_attempts = get_attempts

    def url(self, path: str) -> str:
        """Full URL of an API path such as ``/node/hv1``."""
        return f"{self.connection.base_url}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        headers = {"User-Agent": self.user_agent}
        if self.connection.api_key:
            headers["X-Api-Key"] = self.connection.api_key
        return headers

    def request(self, method: str, path: str, params: Params = None, data: Params = None) -> ApiResponse:
        """Send one call; returns the reply whatever its status, or raises :class:`ApiUnreachable`."""
        method = method.upper()
        attempts = (self.get_attempts or GET_ATTEMPTS) if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                reply = self._send(method, path, params=_clean_params(params), data=_clean_params(data))
            except ApiUnreachable:
                if attempt == attempts:
                    raise
                time.sleep(RETRY_BACKOFF * attempt)
                continue
            if reply.status in RETRY_STATUSES and attempt < attempts:
                time.sleep(RETRY_BACKOFF * attempt)
                continue
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, params: Params = None) -> ApiResponse:
        """GET ``path`` (retried on transient failures)."""
        return self.request("GET", path, params=params)

    def post(self, path: str, params: Params = None, data: Params = None) -> ApiResponse:
        """POST ``path``."""
        return self.request("POST", path, params=params, data=data)

    def put(self, path: str, params: Params = None, data: Params = None) -> ApiResponse:
        """PUT ``path``."""
        return self.request("PUT", path, params=params, data=data)

    def delete(self, path: str, params: Params = None) -> ApiResponse:
        """DELETE ``path``."""
        return self.request("DELETE", path, params=params)

    def upload(
        self,
        path: str,
        file: Path,
        params: Params = None,
        *,
        field: str = UPLOAD_FIELD,
        on_read: Callable[[int], None] | None = None,
    ) -> ApiResponse:
        """POST ``file`` to ``path`` once, streamed from disk as a ``multipart/form-data`` field.

        ``on_read`` is called with the number of file bytes in each block as it is sent.
        """
        with MultipartFileBody(file, field, on_read) as body:
            return self._send(
                "POST", path, params=_clean_params(params), data=body, content_type=body.content_type
            )

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        data: dict[str, Any] | MultipartFileBody | None,
        content_type: str | None = None,
    ) -> ApiResponse:
        """Send one request (no retries); the reply, or :class:`ApiUnreachable`."""
        url = self.url(path)
        headers = self.headers()
        if content_type is not None:
            headers["Content-Type"] = content_type
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                reply = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self.timeout or (CONNECT_TIMEOUT, READ_TIMEOUT),
                    verify=self.verify,
                )
        except requests.exceptions.RequestException as exc:
            self._debug(f"API endpoint: {method} {url} failed: {describe_failure(exc)}")
            raise ApiUnreachable(
                f"Failed to connect to the API at {self.connection.base_url}: {describe_failure(exc)}"
            ) from exc
        self._debug(f"API endpoint: {method} {reply.url}")
        self._debug(f"Response code: {reply.status_code}")
        self._debug(f"Response headers: {dict(reply.headers)}")
        try:
            body = reply.json()
        except (ValueError, json.JSONDecodeError):
            body = None
        return ApiResponse(reply.status_code, body, reply.text)

    def _debug(self, text: str) -> None:
        if self.debug_log is not None:
            self.debug_log(text)
