"""Cluster faults: list, acknowledge, delete."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import ctx
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster import faults as faults_mod
from pvc.cluster.errors import NotFoundError
from pvc.state import paths

group = RouteGroup("faults")


@group.route(
    "/faults",
    summary="List faults",
    args=[Arg("sort_key", default="last_reported", choices=faults_mod.SORT_KEYS)],
)
def list_faults(sort_key: str):
    return jsonify([f.to_api() for f in faults_mod.list_faults(ctx().cache, sort_key)])


@group.route("/faults", "PUT", summary="Acknowledge every fault", role=OPERATOR)
def acknowledge_all():
    context = ctx()
    ids = [f.id for f in faults_mod.list_faults(context.cache)]
    count = faults_mod.acknowledge(context.store, context.cache, ids)
    context.settle(*(paths.fault(i) for i in ids))
    return jsonify(message=f"Acknowledged {count} faults")


@group.route("/faults", "DELETE", summary="Delete every fault", role=OPERATOR)
def delete_all():
    context = ctx()
    ids = [f.id for f in faults_mod.list_faults(context.cache)]
    count = faults_mod.delete(context.store, ids)
    context.settle(*(paths.fault(i) for i in ids))
    return jsonify(message=f"Deleted {count} faults")


def _existing(fault_id: str) -> faults_mod.Fault:
    fault = faults_mod.get_fault(ctx().cache, fault_id)
    if fault is None:
        raise NotFoundError(f"Fault '{fault_id}' not found")
    return fault


@group.route("/faults/<fault_id>", summary="One fault")
def get_fault(fault_id: str):
    return jsonify([_existing(fault_id).to_api()])


@group.route("/faults/<fault_id>", "PUT", summary="Acknowledge a fault", role=OPERATOR)
def acknowledge(fault_id: str):
    context = ctx()
    _existing(fault_id)
    faults_mod.acknowledge(context.store, context.cache, [fault_id])
    context.settle(paths.fault(fault_id))
    return jsonify(message=f"Acknowledged fault {fault_id}")


@group.route("/faults/<fault_id>", "DELETE", summary="Delete a fault", role=OPERATOR)
def delete(fault_id: str):
    context = ctx()
    _existing(fault_id)
    faults_mod.delete(context.store, [fault_id])
    context.settle(paths.fault(fault_id))
    return jsonify(message=f"Deleted fault {fault_id}")
