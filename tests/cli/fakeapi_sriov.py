"""SR-IOV endpoints of the fake PVC API (``/sriov/...``), for the ``pvc network sriov`` tests.

:class:`FakeSriovApi` adds SR-IOV functions to :class:`FakeApi`: node hv1 has PF ens1f0 (VFs
ens1f0v0-ens1f0v3) and PF ens1f1 (VF ens1f1v0); ens1f0v0 is used by a VM through macvtap and
ens1f0v1 as a PCI device, as ``tests/sriov_data.py`` writes them for the real server (the
shapes are compared in tests/api/test_cli_fake_sriov_shapes.py). hv2 has none.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request

from tests.cli.fakeapi import FakeApi, build_app

MAC1_UUID = "0b5d6a2e-1111-4000-8000-000000000001"
PCI1_UUID = "0b5d6a2e-2222-4000-8000-000000000002"


def vf(name: str, pf: str, index: int, bus: int = 1, domain: str | None = None) -> dict[str, Any]:
    """A VF in the shape of ``GET /sriov/vf/<node>``, with the settings a driver reports by default."""
    return {
        "phy": name,
        "pf": pf,
        "mtu": 1500,
        "mac": f"52:54:00:{bus:02x}:10:{index:02x}",
        "pci": f"0000:{bus:02x}:10.{index}",
        "config": {
            "vlan_id": "0",
            "vlan_qos": "0",
            "tx_rate_min": "0",
            "tx_rate_max": "0",
            "spoof_check": True,
            "link_state": "auto",
            "trust": False,
            "query_rss": False,
        },
        "usage": {"used": domain is not None, "domain": domain},
    }


def _hv1() -> dict[str, list[dict[str, Any]]]:
    return {
        "pfs": [
            {"phy": "ens1f0", "mtu": "9000", "vfs": [f"ens1f0v{i}" for i in range(4)]},
            {"phy": "ens1f1", "mtu": "1500", "vfs": ["ens1f1v0"]},
        ],
        "vfs": [
            vf("ens1f0v0", "ens1f0", 0, domain=MAC1_UUID),
            vf("ens1f0v1", "ens1f0", 1, domain=PCI1_UUID),
            vf("ens1f0v2", "ens1f0", 2),
            vf("ens1f0v3", "ens1f0", 3),
            vf("ens1f1v0", "ens1f1", 0, bus=2),
        ],
    }


@dataclass
class FakeSriovApi(FakeApi):
    """The base fake plus SR-IOV functions by node (``{"pfs": [...], "vfs": [...]}``)."""

    sriov: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sriov:
            self.sriov = {"hv1": _hv1(), "hv2": {"pfs": [], "vfs": []}}


def build_sriov_app(api: FakeSriovApi) -> Flask:
    """The fake API's application with the SR-IOV endpoints."""
    app = build_app(api)

    def error(message: str, status: int) -> Any:
        return jsonify({"message": message}), status

    def functions(node: str) -> dict[str, list[dict[str, Any]]] | None:
        return api.sriov.get(node) if node in api.nodes else None

    @app.get("/api/v1/sriov/pf/<node>")
    def pf_list(node: str) -> Any:
        found = functions(node)
        if found is None:
            return error(f"Node '{node}' not found", 404)
        return jsonify(copy.deepcopy(found["pfs"]))

    @app.get("/api/v1/sriov/vf/<node>")
    def vf_list(node: str) -> Any:
        found = functions(node)
        if found is None:
            return error(f"Node '{node}' not found", 404)
        pf = request.args.get("pf")
        return jsonify([copy.deepcopy(item) for item in found["vfs"] if pf is None or item["pf"] == pf])

    @app.get("/api/v1/sriov/vf/<node>/<name>")
    def vf_get(node: str, name: str) -> Any:
        found = functions(node)
        if found is None:
            return error(f"Node '{node}' not found", 404)
        for item in found["vfs"]:
            if item["phy"] == name:
                return jsonify([copy.deepcopy(item)])
        return error(f"VF '{name}' not found on node '{node}'", 404)

    return app
