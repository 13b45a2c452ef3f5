"""Cluster status and maintenance mode."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import ctx
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster.status import cluster_status
from pvc.state import paths

group = RouteGroup("cluster")


@group.route("/status", summary="Cluster status")
def status():
    context = ctx()
    return jsonify(
        cluster_status(context.cache, upstream_ip=context.upstream_ip, cluster_name=context.cluster_name)
    )


@group.route(
    "/status",
    "POST",
    summary="Set maintenance mode",
    role=OPERATOR,
    args=[Arg("state", required=True, choices=("true", "false"), help="true or false")],
)
def set_maintenance(state: str):
    context = ctx()
    context.store.set(paths.MAINTENANCE, state)
    context.settle(paths.MAINTENANCE)
    return jsonify(message=f"Set cluster maintenance mode to {state}")


@group.route("/status/primary_node", summary="The primary coordinator", role=None)
def primary_node():
    return jsonify(primary_node=ctx().cache.cluster_config().primary_node)
