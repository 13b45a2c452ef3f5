"""Prometheus metrics (text format, ``pvc_`` prefix); open unless ``api.authentication.protect_metrics``."""

from __future__ import annotations

from flask import Response

from pvc.api.context import ctx
from pvc.api.routes import RouteGroup
from pvc.cluster.metrics import CONTENT_TYPE, exposition

group = RouteGroup("metrics")
GUARD = "protect_metrics"


def _answer(*sets: str) -> Response:
    context = ctx()
    return Response(
        exposition(context.cluster, *sets, database_scope=context.cluster_name), mimetype=CONTENT_TYPE
    )


@group.route(
    "/metrics", summary="All metrics (Prometheus text)", role=None, guard=GUARD, content_type=CONTENT_TYPE
)
def metrics():
    return _answer()


@group.route(
    "/metrics/health", summary="Health and fault metrics", role=None, guard=GUARD, content_type=CONTENT_TYPE
)
def metrics_health():
    return _answer("health")


@group.route(
    "/metrics/resource",
    summary="Node resource and state metrics",
    role=None,
    guard=GUARD,
    content_type=CONTENT_TYPE,
)
def metrics_resource():
    return _answer("resource")
