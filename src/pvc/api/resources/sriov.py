"""SR-IOV: each node's physical and virtual functions, and the settings of a VF."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster
from pvc.api.routes import OPERATOR, Arg, RouteGroup
from pvc.cluster.sriov import actions, queries

group = RouteGroup("sriov")

OK_404 = {"200": "OK", "404": "Not found"}


@group.route("/sriov", summary="SR-IOV root (no content)")
def sriov_root():
    return jsonify(message="PVC SR-IOV: see /sriov/pf and /sriov/vf")


@group.route(
    "/sriov/pf",
    summary="A node's SR-IOV physical functions",
    args=[Arg("node", required=True)],
    responses={"200": "OK", "400": "Bad request", "404": "Not found"},
)
def sriov_pf_list(node: str):
    return jsonify(queries.list_pfs(cluster(), node))


@group.route("/sriov/pf/<node>", summary="A node's SR-IOV physical functions", responses=OK_404)
def sriov_pf_node(node: str):
    return jsonify(queries.list_pfs(cluster(), node))


@group.route(
    "/sriov/vf",
    summary="A node's SR-IOV virtual functions",
    args=[Arg("node", required=True), Arg("pf", help="only the VFs of this physical function")],
    responses={"200": "OK", "400": "Bad request", "404": "Not found"},
)
def sriov_vf_list(node: str, pf: str | None):
    return jsonify(queries.list_vfs(cluster(), node, pf))


@group.route(
    "/sriov/vf/<node>",
    summary="A node's SR-IOV virtual functions",
    args=[Arg("pf", help="only the VFs of this physical function")],
    responses=OK_404,
)
def sriov_vf_node(node: str, pf: str | None):
    return jsonify(queries.list_vfs(cluster(), node, pf))


@group.route("/sriov/vf/<node>/<vf>", summary="One SR-IOV virtual function", responses=OK_404)
def sriov_vf_get(node: str, vf: str):
    return jsonify([queries.get_vf(cluster(), node, vf)])


@group.route(
    "/sriov/vf/<node>/<vf>",
    "PUT",
    summary="Set an SR-IOV virtual function's VLAN, rates, link state and checks",
    role=OPERATOR,
    args=[
        Arg("vlan_id", kind=int, minimum=0, help="VLAN 0 (untagged) to 4094"),
        Arg("vlan_qos", kind=int, minimum=0, help="802.1p priority 0 to 7"),
        Arg("tx_rate_min", kind=int, minimum=0, help="Mbit/s"),
        Arg("tx_rate_max", kind=int, minimum=0, help="Mbit/s; 0 means no limit"),
        Arg("link_state", choices=actions.LINK_STATES),
        Arg("spoof_check", kind=bool),
        Arg("trust", kind=bool),
        Arg("query_rss", kind=bool),
    ],
    responses={"200": "OK", "400": "Bad request", "404": "Not found"},
)
def sriov_vf_set(node: str, vf: str, **settings: int | bool | str | None):
    return jsonify(message=actions.set_vf_config(cluster(), node, vf, **settings))
