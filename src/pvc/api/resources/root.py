"""API root, login/logout, cluster initialise, backup and restore."""

from __future__ import annotations

from flask import jsonify, session

from pvc.api.auth import role_of_token
from pvc.api.context import caller_xml_policy, cluster, ctx
from pvc.api.errors import ApiError
from pvc.api.routes import ADMIN, Arg, RouteGroup
from pvc.cluster import backup as backup_mod

group = RouteGroup("root")
CONFIRM = Arg("yes-i-really-mean-it", required=True, help="confirms a destructive operation")


@group.route("/", summary="API version", role=None)
def root():
    return jsonify(message="PVC API version 1.0")


@group.route(
    "/login",
    "POST",
    summary="Log in with an API key (session cookie)",
    role=None,
    args=[Arg("token", required=True, help="an API key")],
)
def login(token: str):
    if role_of_token(ctx().settings, token) is None:
        raise ApiError("The API key is not valid", 401)
    session["token"] = token
    return jsonify(message="Logged in")


@group.route("/logout", "POST", summary="Log out (drop the session)", role=None)
def logout():
    session.pop("token", None)
    return jsonify(message="Logged out")


@group.route(
    "/initialize",
    "POST",
    summary="Initialise a new cluster",
    role=ADMIN,
    args=[Arg("overwrite", default="False", help="'True' wipes an existing cluster"), CONFIRM],
)
def initialize(overwrite: str, **_confirm: str):
    return jsonify(message=backup_mod.initialize(cluster(), overwrite=overwrite == "True"))


@group.route("/backup", summary="Back up the cluster's state", role=ADMIN)
def backup():
    return jsonify(backup_mod.backup(cluster()))


@group.route(
    "/restore",
    "POST",
    summary="Restore the cluster's state from a backup",
    role=ADMIN,
    args=[CONFIRM, Arg("cluster_data", required=True, help="the JSON text of a backup")],
)
def restore(cluster_data: str, **_confirm: str):
    return jsonify(message=backup_mod.restore(cluster(), cluster_data, caller_xml_policy()))
