"""``pvc vm network add|remove --sriov``: interfaces on SR-IOV VFs in a VM's domain XML.

A macvtap interface names the VF's network device; a hostdev interface its PCI address, which
the CLI reads from ``GET /sriov/vf/{node}/{vf}`` for the VM's node.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, jsonify

from pvc.domain_xml import edit as vm_xml
from tests.cli.conftest import Invoke
from tests.cli.fakeapi import serve
from tests.cli.fakeapi_sriov import vf
from tests.cli.fakeapi_vm import FakeVmApi, build_vm_app
from tests.cli.vm_fixtures import last_put


@dataclass
class FakeVmSriovApi(FakeVmApi):
    """The VM fake plus the VFs of hv1 (where vm1 runs) and hv2 (where vm2 is)."""

    vfs: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {
            "hv1": [vf("ens1f0v2", "ens1f0", 2), vf("ens1f0v3", "ens1f0", 3)],
            "hv2": [vf("ens1f0v3", "ens1f0", 3, bus=3)],
        }
    )


def build(api: FakeVmSriovApi) -> Flask:
    app = build_vm_app(api)

    @app.get("/api/v1/sriov/vf/<node>/<name>")
    def vf_get(node: str, name: str) -> Any:
        for item in api.vfs.get(node, []):
            if item["phy"] == name:
                return jsonify([copy.deepcopy(item)])
        return jsonify({"message": f"VF '{name}' not found on node '{node}'"}), 404

    return app


@pytest.fixture(name="fake_api")
def fake_api_fixture() -> FakeVmSriovApi:
    return FakeVmSriovApi()


@pytest.fixture(name="api_port")
def api_port_fixture(fake_api: FakeVmSriovApi) -> Iterator[int]:
    with serve(fake_api, build) as port:
        yield port


def test_add_a_macvtap_vf(pvc: Invoke, connected: int, fake_api: FakeVmSriovApi) -> None:
    result = pvc("vm", "network", "add", "vm1", "ens1f0v3", "--sriov", "-a", "52:54:00:ab:cd:01")
    assert result.exit_code == 0, result.output
    device = fake_api.calls("POST", "/vm/vm1/device")[0]
    assert device.form["xml"] == [
        '<interface type="direct"><mac address="52:54:00:ab:cd:01"/>'
        '<source dev="ens1f0v3" mode="passthrough"/><model type="virtio"/></interface>'
    ]
    _, root = last_put(fake_api, "vm1")
    (added,) = [i for i in vm_xml.find_interfaces(root, mac="52:54:00:ab:cd:01")]
    assert added.get("type") == "direct" and added.find("source").get("dev") == "ens1f0v3"
    assert fake_api.calls("GET", "/sriov/vf/hv1/ens1f0v3") == []  # the server checks the VF


def test_add_a_hostdev_vf_at_its_pci_address_on_the_vms_node(
    pvc: Invoke, connected: int, fake_api: FakeVmSriovApi
) -> None:
    result = pvc("vm", "network", "add", "vm2", "ens1f0v3", "-s", "-d", "hostdev", "-a", "52:54:00:ab:cd:02")
    assert result.exit_code == 0, result.output
    assert fake_api.calls("GET", "/sriov/vf/hv2/ens1f0v3")  # vm2 is on hv2
    _, root = last_put(fake_api, "vm2")
    (added,) = [i for i in vm_xml.find_interfaces(root, mac="52:54:00:ab:cd:02")]
    assert added.get("type") == "hostdev" and added.get("managed") == "yes"
    address = added.find("source/address")
    assert dict(address.attrib) == {
        "type": "pci",
        "domain": "0x0000",
        "bus": "0x03",
        "slot": "0x10",
        "function": "0x3",
    }
    missing = pvc("vm", "network", "add", "vm2", "ens1f0v9", "-s", "-d", "hostdev")
    assert missing.exit_code != 0 and "ens1f0v9" in missing.stderr


def test_remove_a_vf_interface_of_either_mode(pvc: Invoke, connected: int, fake_api: FakeVmSriovApi) -> None:
    assert pvc("vm", "network", "add", "vm2", "ens1f0v3", "-s", "-d", "hostdev", "-R").exit_code == 0
    fake_api.vms["vm2"]["xml"] = vm_xml.serialize(last_put(fake_api, "vm2")[1])
    result = pvc("vm", "network", "remove", "vm2", "ens1f0v3", "--sriov", "-R")
    assert result.exit_code == 0, result.output
    _, root = last_put(fake_api, "vm2")
    assert [i for i in root.iter("interface") if i.get("type") == "hostdev"] == []
    assert pvc("vm", "network", "add", "vm1", "ens1f0v2", "-s", "-L", "-R").exit_code == 0
    fake_api.vms["vm1"]["xml"] = vm_xml.serialize(last_put(fake_api, "vm1")[1])
    assert pvc("vm", "network", "remove", "vm1", "ens1f0v2", "-s", "-L", "-R").exit_code == 0
    assert [i for i in last_put(fake_api, "vm1")[1].iter("interface") if i.get("type") == "direct"] == []
    nothing = pvc("vm", "network", "remove", "vm1", "ens1f0v2", "-s", "-L", "-R")
    assert nothing.exit_code == 1 and "no interface on SR-IOV VF ens1f0v2" in nothing.stderr
