"""Network endpoints of the fake PVC API (``/network/...``), for the ``pvc network`` tests.

:class:`FakeNetworkApi` adds client networks, their reservations, leases and ACLs to the VM fake
(whose VMs join networks 100 and 200); the calls change that state. Checks are the few the CLI
tests need (unknown objects, duplicates); the real validation is tested against the server.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request

from tests.cli.fakeapi_vm import FakeVmApi, build_vm_app


def network(vni: int, description: str, nettype: str, **settings: Any) -> dict[str, Any]:
    """A network in the shape of ``GET /network``."""
    ip4 = {"network": "", "gateway": "", "dhcp_flag": False, "dhcp_start": "", "dhcp_end": ""}
    ip6 = {"network": "", "gateway": "", "dhcp_flag": False}
    ip4.update(settings.pop("ip4", {}))
    ip6.update(settings.pop("ip6", {}))
    base = {"vni": vni, "description": description, "type": nettype, "mtu": None, "domain": ""}
    return {**base, "name_servers": [], **settings, "ip4": ip4, "ip6": ip6}


def lease(mac: str, ip: str, hostname: str, timestamp: int | str = "static") -> dict[str, Any]:
    """A lease in the shape of ``GET /network/{vni}/lease`` (``static`` for a reservation)."""
    return {"hostname": hostname, "ip4_address": ip, "mac_address": mac, "timestamp": timestamp}


def acl(description: str, direction: str, order: int, rule: str) -> dict[str, Any]:
    """An ACL in the shape of ``GET /network/{vni}/acl``."""
    return {"description": description, "direction": direction, "order": order, "rule": rule}


@dataclass
class FakeNetworkApi(FakeVmApi):
    """The VM fake plus networks 100 (managed, a reservation, a lease, two ACLs) and 200 (bridged)."""

    networks: dict[int, dict[str, Any]] = field(default_factory=dict)
    leases: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    acls: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.networks:
            self.networks = {
                100: network(
                    100,
                    "web",
                    "managed",
                    domain="web.example.com",
                    name_servers=["10.100.0.1"],
                    ip4={
                        "network": "10.100.0.0/24",
                        "gateway": "10.100.0.1",
                        "dhcp_flag": True,
                        "dhcp_start": "10.100.0.100",
                        "dhcp_end": "10.100.0.199",
                    },
                    ip6={"network": "2001:db8:100::/64", "gateway": "2001:db8:100::1", "dhcp_flag": True},
                ),
                200: network(200, "vlan200", "bridged", mtu=9000),
            }
            self.leases = {
                100: [
                    lease("52:54:00:00:00:01", "10.100.0.10", "vm1"),
                    lease("52:54:00:00:00:02", "10.100.0.150", "vm2", 1700000000),
                ],
                200: [],
            }
            self.acls = {
                100: [
                    acl("ssh", "in", 1, "tcp dport 22 accept"),
                    acl("egress", "out", 1, "accept"),
                ],
                200: [],
            }

    def network_count(self) -> int:
        """How many networks ``GET /status`` counts."""
        return len(self.networks)


def _match(limit: str | None, *values: Any) -> bool:
    if not limit:
        return True
    core = (limit[1:] if limit.startswith("^") else ".*" + limit).removesuffix("$")
    core = core if limit.endswith("$") else core + ".*"
    return any(re.fullmatch(core, str(value)) for value in values)


def build_network_app(api: FakeNetworkApi) -> Flask:
    """The fake API's Flask application with the VM and network endpoints."""
    app = build_vm_app(api)

    def error(message: Any, status: int) -> Any:
        return jsonify({"message": message}), status

    def find(vni: str) -> dict[str, Any] | None:
        return api.networks.get(int(vni)) if vni.isdigit() else None

    @app.get("/api/v1/network")
    def network_list() -> Any:
        limit = request.args.get("limit")
        nets = [n for _, n in sorted(api.networks.items()) if _match(limit, n["vni"], n["description"])]
        return jsonify(copy.deepcopy(nets))

    @app.post("/api/v1/network")
    def network_add() -> Any:
        values = request.values
        vni = int(values["vni"])
        if vni in api.networks:
            return error(f"A network with VNI {vni} already exists", 400)
        dhcp = values.get("dhcp4") == "true"
        mtu = values.get("mtu") or None
        api.networks[vni] = network(
            vni,
            values["description"],
            values["nettype"],
            mtu=int(mtu) if mtu else None,
            domain=values.get("domain", ""),
            name_servers=request.values.getlist("name_servers"),
            ip4={
                "network": values.get("ip4_network", ""),
                "gateway": values.get("ip4_gateway", ""),
                "dhcp_flag": dhcp,
                "dhcp_start": values.get("dhcp4_start", ""),
                "dhcp_end": values.get("dhcp4_end", ""),
            },
            ip6={
                "network": values.get("ip6_network", ""),
                "gateway": values.get("ip6_gateway", ""),
                "dhcp_flag": bool(values.get("ip6_network")),
            },
        )
        api.leases[vni], api.acls[vni] = [], []
        return jsonify({"message": f"Added network {vni}"})

    @app.get("/api/v1/network/<vni>")
    def network_get(vni: str) -> Any:
        found = find(vni)
        return jsonify([copy.deepcopy(found)]) if found else error(f"Network '{vni}' not found", 404)

    @app.put("/api/v1/network/<vni>")
    def network_modify(vni: str) -> Any:
        found = find(vni)
        if found is None:
            return error(f"Network '{vni}' not found", 404)
        values = request.values
        for key in ("description", "domain"):
            if key in values:
                found[key] = values[key]
        if "mtu" in values:
            found["mtu"] = int(values["mtu"]) if values["mtu"] else None
        if "dhcp4" in values:
            found["ip4"]["dhcp_flag"] = values["dhcp4"] == "true"
        return jsonify({"message": f"Modified network {vni}"})

    @app.delete("/api/v1/network/<vni>")
    def network_remove(vni: str) -> Any:
        if find(vni) is None:
            return error(f"Network '{vni}' not found", 404)
        del api.networks[int(vni)]
        return jsonify({"message": f"Removed network {vni}"})

    @app.get("/api/v1/network/<vni>/lease")
    def lease_list(vni: str) -> Any:
        if find(vni) is None:
            return error(f"Network '{vni}' not found", 404)
        static = request.args.get("static") == "true"
        limit = request.args.get("limit")
        leases = [
            item
            for item in api.leases[int(vni)]
            if (not static or item["timestamp"] == "static")
            and _match(limit, item["mac_address"], item["ip4_address"], item["hostname"])
        ]
        return jsonify(copy.deepcopy(leases))

    @app.get("/api/v1/network/<vni>/lease/<mac>")
    def lease_get(vni: str, mac: str) -> Any:
        found = (
            [item for item in api.leases.get(int(vni), []) if item["mac_address"] == mac] if find(vni) else []
        )
        return jsonify(copy.deepcopy(found)) if found else error(f"No lease for '{mac}'", 404)

    @app.post("/api/v1/network/<vni>/lease")
    def lease_add(vni: str) -> Any:
        if find(vni) is None:
            return error(f"Network '{vni}' not found", 404)
        values = request.values
        mac = values["macaddress"].lower()
        if any(item["mac_address"] == mac for item in api.leases[int(vni)]):
            return error(f"MAC address {mac} already has a reservation", 400)
        api.leases[int(vni)].append(lease(mac, values["ipaddress"], values.get("hostname", "")))
        return jsonify({"message": f"Added DHCP reservation for {mac}"})

    @app.delete("/api/v1/network/<vni>/lease/<mac>")
    def lease_remove(vni: str, mac: str) -> Any:
        leases = api.leases.get(int(vni), []) if find(vni) else []
        kept = [item for item in leases if not (item["mac_address"] == mac and item["timestamp"] == "static")]
        if len(kept) == len(leases):
            return error(f"No DHCP reservation for '{mac}'", 404)
        api.leases[int(vni)] = kept
        return jsonify({"message": f"Removed DHCP reservation of {mac}"})

    @app.get("/api/v1/network/<vni>/acl")
    def acl_list(vni: str) -> Any:
        if find(vni) is None:
            return error(f"Network '{vni}' not found", 404)
        direction, limit = request.args.get("direction"), request.args.get("limit")
        acls = [
            item
            for item in api.acls[int(vni)]
            if (direction is None or item["direction"] == direction) and _match(limit, item["description"])
        ]
        return jsonify(copy.deepcopy(acls))

    @app.get("/api/v1/network/<vni>/acl/<description>")
    def acl_get(vni: str, description: str) -> Any:
        found = (
            [a for a in api.acls.get(int(vni), []) if a["description"] == description] if find(vni) else []
        )
        return jsonify(copy.deepcopy(found)) if found else error(f"No ACL '{description}'", 404)

    @app.post("/api/v1/network/<vni>/acl")
    def acl_add(vni: str) -> Any:
        if find(vni) is None:
            return error(f"Network '{vni}' not found", 404)
        values = request.values
        acls = api.acls[int(vni)]
        if any(item["description"] == values["description"] for item in acls):
            return error(f"The network has an ACL '{values['description']}' already", 400)
        direction = values.get("direction", "in")
        same = [item for item in acls if item["direction"] == direction]
        order = min(int(values.get("order") or len(same) + 1), len(same) + 1)
        for item in same:
            if item["order"] >= order:
                item["order"] += 1
        acls.append(acl(values["description"], direction, order, values["rule"]))
        acls.sort(key=lambda item: (item["direction"], item["order"]))
        return jsonify({"message": f"Added ACL '{values['description']}'"})

    @app.delete("/api/v1/network/<vni>/acl/<description>")
    def acl_remove(vni: str, description: str) -> Any:
        acls = api.acls.get(int(vni), []) if find(vni) else []
        gone = next((item for item in acls if item["description"] == description), None)
        if gone is None:
            return error(f"The network has no ACL '{description}'", 404)
        acls.remove(gone)
        for item in acls:
            if item["direction"] == gone["direction"] and item["order"] > gone["order"]:
                item["order"] -= 1
        return jsonify({"message": f"Removed ACL '{description}'"})

    return app
