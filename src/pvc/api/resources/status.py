"""Cluster status and maintenance mode."""

from __future__ import annotations

from flask import Response, jsonify

from pvc.api.context import cluster, ctx
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster import status as cluster_status

group = RouteGroup("cluster")


@group.route("/status", summary="Cluster status")
def status():
    context = ctx()
    body = cluster_status.status_json(
        context.cluster,
        context.vm_listing,
        upstream_ip=context.upstream_ip,
        cluster_name=context.cluster_name,
    )
    return Response(body, mimetype="application/json")


@group.route(
    "/status",
    "POST",
    summary="Set maintenance mode",
    role=OPERATOR,
    args=[Arg("state", kind=bool, required=True, help="true turns maintenance mode on, false off")],
)
def set_maintenance(state: bool):
    return jsonify(message=cluster_status.set_maintenance(cluster(), state))


@group.route("/status/primary_node", summary="The primary coordinator", role=None)
def primary_node():
    return jsonify(primary_node=cluster_status.requested_primary(cluster()))
