"""API keys, roles, login sessions and CSRF.

A request authenticates with its key in ``X-Api-Key``, or with the session cookie that
``POST /login`` set (see :mod:`pvc.api.sessions`). A cookie-authenticated request that
changes something (any method but GET/HEAD) must also send the session's CSRF token in
``X-CSRF-Token``; a request with ``X-Api-Key`` needs none. A key is never read from the
query string. Failed key checks are limited per client address (429).

Keys come from the node configuration; a key without a role is ``admin``. Each route
declares the least role it needs; ``/metrics*`` and ``/openapi.json`` need ``read-only``
when ``protect_metrics``/``protect_openapi`` say so.
"""

from __future__ import annotations

import hmac
import math

from flask import Response, request

from pvc.api.errors import ApiError
from pvc.api.routes import ADMIN, READ_ONLY, ROLE_RANK, Route
from pvc.api.sessions import LoginLimiter, Session, SessionStore
from pvc.config import ApiSection

HEADER = "X-Api-Key"
CSRF_HEADER = "X-CSRF-Token"
COOKIE = "pvc_session"
#: Methods that change nothing, so a cookie alone may authenticate them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def role_of_token(settings: ApiSection, token: str | None) -> str | None:
    """The role a token grants, or None if it is not a configured key."""
    if not token:
        return None
    found = None
    for entry in settings.token:  # compare with every key, so timing says nothing
        if hmac.compare_digest(entry.token.encode(), token.encode()) and found is None:
            found = entry.role
    return found


def needed_role(settings: ApiSection, route: Route) -> str | None:
    """The least role ``route`` needs under ``settings`` (None: open to everyone)."""
    if not settings.authentication.enabled:
        return None
    if route.role is None and route.guard and getattr(settings.authentication, route.guard):
        return READ_ONLY
    return route.role


def client_address() -> str:
    """The requesting client's address (the peer of the connection)."""
    return request.remote_addr or "unknown"


def check_key(settings: ApiSection, limiter: LoginLimiter, key: str) -> str:
    """The role of ``key``; ApiError 429 while the client is over its failed-attempt limit,
    401 (counted as a failure) when the key is not valid."""
    address = client_address()
    wait = limiter.retry_after(address, settings.authentication.login_attempts)
    if wait > 0:
        raise ApiError(
            f"Too many failed authentication attempts from {address}; try again in {math.ceil(wait)} s",
            429,
        )
    role = role_of_token(settings, key)
    if role is None:
        limiter.failed(address)
        raise ApiError("The API key is not valid", 401)
    return role


def current_session(sessions: SessionStore) -> Session | None:
    """The live session named by the request's cookie, if any."""
    return sessions.get(request.cookies.get(COOKIE))


def authorise(
    settings: ApiSection, sessions: SessionStore, limiter: LoginLimiter, route: Route
) -> str | None:
    """The caller's role; ApiError (401/403/429) unless the request may use ``route``.

    With authentication off every caller of a route that names a role is ``admin``; a
    route open to all gives None.
    """
    needed = needed_role(settings, route)
    if needed is None:
        return ADMIN if route.role is not None and not settings.authentication.enabled else None
    key = request.headers.get(HEADER)
    if key:
        role = check_key(settings, limiter, key)
    else:
        session = current_session(sessions)
        if session is None:
            raise ApiError("Authentication required: send a valid API key in X-Api-Key", 401)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                raise ApiError(
                    f"A request authenticated by the session cookie must send the csrf_token "
                    f"from /login in {CSRF_HEADER}",
                    403,
                )
        role = session.role
    if ROLE_RANK[role] < ROLE_RANK[needed]:
        raise ApiError(f"The API key's role '{role}' may not do this (needs '{needed}')", 403)
    return role


def set_session_cookie(reply: Response, session_id: str, lifetime: float, secure: bool) -> None:
    """Attach the session cookie: the opaque id only, HttpOnly, SameSite=Strict, Secure with TLS."""
    reply.set_cookie(
        COOKIE,
        session_id,
        max_age=int(lifetime),
        httponly=True,
        secure=secure,
        samesite="Strict",
        path="/",
    )


def clear_session_cookie(reply: Response, secure: bool) -> None:
    """Tell the browser to forget the session cookie."""
    reply.delete_cookie(COOKIE, path="/", httponly=True, secure=secure, samesite="Strict")
