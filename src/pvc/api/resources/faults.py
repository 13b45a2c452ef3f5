"""Cluster faults: list, acknowledge, delete."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster.faults import actions, queries

group = RouteGroup("faults")


@group.route(
    "/faults",
    summary="List faults",
    args=[Arg("sort_key", default="last_reported", choices=queries.SORT_KEYS)],
)
def list_faults(sort_key: str):
    return jsonify([f.to_api() for f in queries.list_faults(cluster(), sort_key)])


@group.route("/faults", "PUT", summary="Acknowledge every fault", role=OPERATOR)
def acknowledge_all():
    return jsonify(message=actions.acknowledge_all(cluster()))


@group.route("/faults", "DELETE", summary="Delete every fault", role=OPERATOR)
def delete_all():
    return jsonify(message=actions.delete_all(cluster()))


@group.route("/faults/<fault_id>", summary="One fault")
def get_fault(fault_id: str):
    return jsonify([queries.existing_fault(cluster(), fault_id).to_api()])


@group.route("/faults/<fault_id>", "PUT", summary="Acknowledge a fault", role=OPERATOR)
def acknowledge(fault_id: str):
    return jsonify(message=actions.acknowledge(cluster(), fault_id))


@group.route("/faults/<fault_id>", "DELETE", summary="Delete a fault", role=OPERATOR)
def delete(fault_id: str):
    return jsonify(message=actions.delete(cluster(), fault_id))
