"""Nodes: list, details, states and logs."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster, ctx
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.api.waiting import WAIT_RESPONSES, waited
from pvc.cluster.node import actions, logs, queries

group = RouteGroup("node")


@group.route(
    "/node",
    summary="List nodes",
    args=[
        Arg("limit", help="substring of node names (^ and $ anchor it)"),
        Arg("daemon_state"),
        Arg("coordinator_state"),
        Arg("domain_state"),
    ],
)
def list_nodes(**filters: str | None):
    return jsonify([queries.node_view(cluster(), n) for n in queries.list_nodes(cluster(), **filters)])


@group.route("/node/<node>", summary="One node", responses={"200": "OK", "404": "Not found"})
def get_node(node: str):
    return jsonify([queries.node_view(cluster(), queries.get_node(cluster(), node))])


def _state_getter(field: str):
    def handler(node: str):
        record = queries.node_view(cluster(), queries.get_node(cluster(), node))
        return jsonify({"name": node, field: record[field]})

    handler.__name__ = f"get_{field}"
    return handler


for _field, _path in (
    ("daemon_state", "daemon-state"),
    ("coordinator_state", "coordinator-state"),
    ("domain_state", "domain-state"),
):
    group.route(f"/node/<node>/{_path}", summary=f"A node's {_field.replace('_', ' ')}")(
        _state_getter(_field)
    )


@group.route(
    "/node/<node>/coordinator-state",
    "POST",
    summary="Make a node primary or secondary",
    role=OPERATOR,
    args=[Arg("state", required=True, choices=("primary", "secondary"))],
)
def set_coordinator_state(node: str, state: str):
    return jsonify(message=actions.request_coordinator_state(cluster(), node, state))


@group.route(
    "/node/<node>/domain-state",
    "POST",
    summary="Flush a node or make it ready",
    role=OPERATOR,
    args=[Arg("state", required=True, choices=("flush", "ready")), Arg("wait", kind=bool, default=False)],
    responses={"200": "OK", "400": "Bad request", **WAIT_RESPONSES},
)
def set_domain_state(node: str, state: str, wait: bool):
    def change(wait: bool, timeout: float) -> str:
        return actions.request_domain_state(cluster(), node, state, wait=wait, timeout=timeout)

    return waited(ctx().wait_gate, wait, change, poll=f"/node/{node}/domain-state")


@group.route(
    "/node/<node>/log",
    summary="A node's recent log lines",
    args=[Arg("lines", kind=int, minimum=1, help="how many of the newest lines")],
)
def node_log(node: str, lines: int | None):
    context = ctx()
    return jsonify(name=node, data=logs.node_log(context.cluster, node, lines or context.log_lines_default))
