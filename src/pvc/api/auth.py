"""API keys and roles.

A request carries its key in ``X-Api-Key`` (or logs in once with ``POST /login`` and
uses the session cookie). Keys come from the node configuration; a key without a role
is ``admin``. Each route declares the least role it needs.
"""

from __future__ import annotations

import hmac

from flask import request, session

from pvc.api.errors import ApiError
from pvc.api.routes import ADMIN, ROLE_RANK, Route
from pvc.config import ApiSection

HEADER = "X-Api-Key"


def role_of_token(settings: ApiSection, token: str | None) -> str | None:
    """The role a token grants, or None if it is not a configured key."""
    if not token:
        return None
    for entry in settings.token:
        if hmac.compare_digest(entry.token.encode(), token.encode()):
            return entry.role
    return None


def authorise(settings: ApiSection, route: Route) -> str | None:
    """The caller's role; ApiError(401/403) unless the request may use ``route``.

    With authentication off every caller is ``admin``; a route open to all (no role)
    gives None.
    """
    if route.role is None:
        return None
    if not settings.authentication.enabled:
        return ADMIN
    token = request.headers.get(HEADER) or session.get("token")
    role = role_of_token(settings, token)
    if role is None:
        raise ApiError(
            "Authentication required: send a valid API key in X-Api-Key"
            if not token
            else "The API key is not valid",
            401,
        )
    if ROLE_RANK[role] < ROLE_RANK[route.role]:
        raise ApiError(f"The API key's role '{role}' may not do this (needs '{route.role}')", 403)
    return role
