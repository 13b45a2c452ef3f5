"""Client networks: networks, their DHCP leases and reservations, their ACLs."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import cluster, ctx
from pvc.api.routes import ADMIN, OK_400, OK_400_404, OK_404, OPERATOR, Arg, RouteGroup
from pvc.cluster.network import acls, actions, queries
from pvc.cluster.network.validation import DIRECTIONS, NETWORK_TYPES

group = RouteGroup("network")

IN_USE = {**OK_400_404, "409": "In use by VMs"}

#: What a network carries besides its VNI and type (POST /network and PUT /network/{vni}).
SETTINGS = [
    Arg("mtu", help="576-9000; empty for the nodes' default"),
    Arg("domain", help="DNS domain of a managed network's clients"),
    Arg("name_servers", many=True, help="name server addresses handed out by DHCP (repeat the key)"),
    Arg("ip4_network", help="IPv4 subnet in CIDR form"),
    Arg("ip4_gateway", help="the gateway's IPv4 address, inside the subnet"),
    Arg("ip6_network", help="IPv6 prefix in CIDR form"),
    Arg("ip6_gateway", help="the gateway's IPv6 address, inside the prefix"),
]
DHCP_RANGE = [Arg("dhcp4_start"), Arg("dhcp4_end")]
#: What adding a network takes besides its VNI (in the path or not).
ADD_ARGS = [
    Arg("description", required=True),
    Arg("nettype", required=True, choices=NETWORK_TYPES),
    *SETTINGS,
    Arg("dhcp4", kind=bool, default=False),
    *DHCP_RANGE,
]


@group.route(
    "/network", summary="List client networks", args=[Arg("limit", help="regex on VNIs or descriptions")]
)
def network_list(limit: str | None):
    return jsonify(queries.list_networks(cluster(), limit))


@group.route(
    "/network",
    "POST",
    summary="Add a client network",
    role=OPERATOR,
    args=[
        Arg("vni", kind=int, required=True, help="1-16777215; a VLAN id 1-4094 for a bridged network"),
        *ADD_ARGS,
    ],
    responses=OK_400,
)
def network_add(vni: int, description: str, nettype: str, **settings):
    reserved = ctx().reserved_networks
    return jsonify(
        message=actions.add_network(cluster(), vni, description, nettype, reserved=reserved, **settings)
    )


@group.route("/network/<vni>", summary="One client network (a list of one)", responses=OK_404)
def network_get(vni: str):
    return jsonify([queries.get_network(cluster(), vni)])


@group.route(
    "/network/<vni>",
    "POST",
    summary="Add a client network with this VNI",
    role=OPERATOR,
    args=ADD_ARGS,
    responses=OK_400,
)
def network_add_element(vni: str, description: str, nettype: str, **settings):
    reserved = ctx().reserved_networks
    return jsonify(
        message=actions.add_network(cluster(), vni, description, nettype, reserved=reserved, **settings)
    )


@group.route(
    "/network/<vni>",
    "PUT",
    summary="Change a client network (arguments given replace; empty clears)",
    role=OPERATOR,
    args=[Arg("description"), *SETTINGS, Arg("dhcp4", kind=bool), *DHCP_RANGE],
    responses=OK_400_404,
)
def network_modify(vni: str, **changes):
    return jsonify(
        message=actions.modify_network(cluster(), vni, reserved=ctx().reserved_networks, **changes)
    )


@group.route(
    "/network/<vni>",
    "DELETE",
    summary="Remove a client network with its reservations, leases and ACLs",
    role=OPERATOR,
    responses=IN_USE,
)
def network_remove(vni: str):
    return jsonify(message=actions.remove_network(cluster(), vni))


# -- leases and reservations -----------------------------------------------------------------


@group.route(
    "/network/<vni>/lease",
    summary="DHCP leases: reservations, then dynamic leases",
    args=[
        Arg("limit", help="regex on MAC addresses, IP addresses or host names"),
        Arg("static", kind=bool, default=False, help="reservations only"),
    ],
    responses=OK_400_404,
)
def lease_list(vni: str, limit: str | None, static: bool):
    return jsonify(queries.list_leases(cluster(), vni, limit, static))


@group.route(
    "/network/<vni>/lease",
    "POST",
    summary="Add a DHCP reservation (static lease)",
    role=OPERATOR,
    args=[Arg("macaddress", required=True), Arg("ipaddress", required=True), Arg("hostname")],
    responses=OK_400_404,
)
def lease_add(vni: str, macaddress: str, ipaddress: str, hostname: str | None):
    return jsonify(message=actions.add_reservation(cluster(), vni, macaddress, ipaddress, hostname))


@group.route("/network/<vni>/lease/<mac>", summary="One lease (a list of one)", responses=OK_400_404)
def lease_get(vni: str, mac: str):
    return jsonify([queries.get_lease(cluster(), vni, mac)])


@group.route(
    "/network/<vni>/lease/<mac>",
    "POST",
    summary="Reserve an address for this MAC (replacing its reservation)",
    role=OPERATOR,
    args=[Arg("ipaddress", required=True), Arg("hostname")],
    responses=OK_400_404,
)
def lease_set(vni: str, mac: str, ipaddress: str, hostname: str | None):
    return jsonify(message=actions.set_reservation(cluster(), vni, mac, ipaddress, hostname))


@group.route(
    "/network/<vni>/lease/<mac>",
    "DELETE",
    summary="Remove a DHCP reservation",
    role=OPERATOR,
    responses=OK_404,
)
def lease_remove(vni: str, mac: str):
    return jsonify(message=actions.remove_reservation(cluster(), vni, mac))


# -- ACLs ------------------------------------------------------------------------------------


@group.route(
    "/network/<vni>/acl",
    summary="A network's ACLs by direction and order",
    args=[Arg("limit", help="regex on descriptions"), Arg("direction", choices=DIRECTIONS)],
    responses=OK_400_404,
)
def acl_list(vni: str, limit: str | None, direction: str | None):
    return jsonify(queries.list_acls(cluster(), vni, limit, direction))


ACL_ARGS = [
    Arg("rule", required=True, help="one nftables rule (a safe subset: see the documentation)"),
    Arg("direction", choices=DIRECTIONS, default="in"),
    Arg("order", help="its place among its direction's rules, from 1; default last"),
]


@group.route(
    "/network/<vni>/acl",
    "POST",
    summary="Add an ACL",
    role=ADMIN,
    args=[Arg("description", required=True), *ACL_ARGS],
    responses=OK_400_404,
)
def acl_add(vni: str, description: str, rule: str, direction: str, order: str | None):
    checker = ctx().network_rule_checker
    return jsonify(
        message=acls.add_acl(
            cluster(), vni, description, rule, direction=direction, order=order, rule_checker=checker
        )
    )


@group.route("/network/<vni>/acl/<description>", summary="One ACL (a list of one)", responses=OK_400_404)
def acl_get(vni: str, description: str):
    return jsonify([queries.get_acl(cluster(), vni, description)])


@group.route(
    "/network/<vni>/acl/<description>",
    "POST",
    summary="Add this ACL, or replace its rule, direction and order",
    role=ADMIN,
    args=ACL_ARGS,
    responses=OK_400_404,
)
def acl_set(vni: str, description: str, rule: str, direction: str, order: str | None):
    checker = ctx().network_rule_checker
    return jsonify(
        message=acls.set_acl(
            cluster(), vni, description, rule, direction=direction, order=order, rule_checker=checker
        )
    )


@group.route(
    "/network/<vni>/acl/<description>", "DELETE", summary="Remove an ACL", role=ADMIN, responses=OK_404
)
def acl_remove(vni: str, description: str):
    return jsonify(message=acls.remove_acl(cluster(), vni, description))
