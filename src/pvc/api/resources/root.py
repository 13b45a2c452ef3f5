"""API root, login/logout, cluster initialise, backup and restore."""

from __future__ import annotations

import json

from flask import jsonify, request

from pvc.api import auth
from pvc.api.args import confirmed
from pvc.api.context import caller_xml_policy, cluster, ctx
from pvc.api.errors import ApiError
from pvc.api.routes import ADMIN, CONFIRM, Arg, RouteGroup
from pvc.cluster import backup as backup_mod

group = RouteGroup("root")


def _require_confirmation(values: dict[str, bool], what: str) -> None:
    if not confirmed(values):
        raise ApiError(f"{what}: confirm with {CONFIRM.name}=yes")


@group.route("/", summary="API version", role=None)
def root():
    return jsonify(message="PVC API version 1.0")


@group.route(
    "/login",
    "POST",
    summary="Log in with an API key: a session cookie and the CSRF token its writes must send",
    role=None,
    args=[Arg("token", body_only=True, help="an API key (or send it in X-Api-Key)")],
    responses={
        "200": "Logged in: {message, csrf_token}",
        "401": "Not a valid key",
        "429": "Too many failures",
    },
)
def login(token: str | None):
    context = ctx()
    settings = context.settings
    key = token or request.headers.get(auth.HEADER)
    if not key:
        raise ApiError(f"Send an API key as 'token' in the request body or in {auth.HEADER}")
    role = auth.check_key(settings, context.logins, key)
    lifetime = settings.authentication.session_lifetime
    session_id, session = context.sessions.create(role, lifetime)
    reply = jsonify(message="Logged in", csrf_token=session.csrf_token)
    auth.set_session_cookie(reply, session_id, lifetime, secure=settings.ssl.enabled)
    return reply


@group.route("/logout", "POST", summary="Log out (the session ends on the server)", role=None)
def logout():
    context = ctx()
    context.sessions.revoke(request.cookies.get(auth.COOKIE))
    reply = jsonify(message="Logged out")
    auth.clear_session_cookie(reply, secure=context.settings.ssl.enabled)
    return reply


@group.route(
    "/initialize",
    "POST",
    summary="Initialise a new cluster",
    role=ADMIN,
    args=[Arg("overwrite", kind=bool, default=False, help="true wipes an existing cluster"), CONFIRM],
)
def initialize(overwrite: bool, **values: bool):
    _require_confirmation(values, "Initializing a cluster")
    return jsonify(message=backup_mod.initialize(cluster(), overwrite=overwrite))


@group.route(
    "/backup",
    summary="Back up the cluster's state: a JSON string whose content is the JSON dump (decode twice)",
    role=ADMIN,
)
def backup():
    # PVC v1 answers the dump already encoded as JSON text, so the body is a JSON string and
    # its clients decode it a second time; the text is what POST /restore takes as cluster_data.
    return jsonify(json.dumps(backup_mod.backup(cluster())))


@group.route(
    "/restore",
    "POST",
    summary="Restore the cluster's state from a backup",
    role=ADMIN,
    args=[CONFIRM, Arg("cluster_data", required=True, help="the JSON text of a backup")],
)
def restore(cluster_data: str, **values: bool):
    _require_confirmation(values, "Restoring a backup replaces all cluster data")
    return jsonify(message=backup_mod.restore(cluster(), cluster_data, caller_xml_policy()))
