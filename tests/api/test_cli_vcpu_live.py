"""`pvc vm vcpu get|set` on a VM defined from XML without a `<cpu><topology>`, against the real
API (served over HTTP, real ZooKeeper, node daemons on libvirt's test driver)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pvc.cli.main import cli
from pvc.domain_xml import build as domain_xml
from pvc.domain_xml.edit import Topology, read_vcpus
from pvc.domain_xml.parse import load
from tests.api.conftest import TOKENS, served_with_cli, start_hypervisor_nodes

NODES = ["hv1", "hv2"]


@pytest.fixture
def served(api_factory, cluster, test_driver_uri, tmp_path, monkeypatch):
    """The API on loopback, two nodes with a hypervisor, and a CLI connection to the API."""
    client, context = api_factory(auth=True)
    start_hypervisor_nodes(cluster, context, NODES, test_driver_uri)
    runner = CliRunner()

    def pvc(*args: str) -> str:
        result = runner.invoke(cli, ["-q", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    with served_with_cli(context, tmp_path, monkeypatch):
        yield pvc, client, {"X-Api-Key": TOKENS["admin"]}


def test_vcpu_get_and_set_on_a_vm_without_a_topology(served):
    pvc, client, headers = served
    xml = domain_xml.build(domain_xml.DomainSpec(name="bare", vcpus=2, memory_mib=64))
    assert load(xml).find("cpu/topology") is None
    defined = client.post("/api/v1/vm", data={"xml": xml, "node": "hv1"}, headers=headers)
    assert defined.status_code == 200, defined.json
    assert client.get("/api/v1/vm/bare", headers=headers).json[0]["vcpu_topology"] == "N/A"
    assert "topology" not in pvc("vm", "info", "bare")

    shown = json.loads(pvc("vm", "vcpu", "get", "bare", "-f", "json"))
    assert shown == {"name": "bare", "vcpus": 2, "sockets": 1, "cores": 2, "threads": 1}
    assert "Topology (S/C/T): 1/2/1" in pvc("vm", "vcpu", "get", "bare")

    pvc("vm", "vcpu", "set", "bare", "4", "-R")
    vm = client.get("/api/v1/vm/bare", headers=headers).json[0]
    assert read_vcpus(load(vm["xml"])) == (4, Topology(1, 4, 1))
    assert vm["vcpu"] == 4 and vm["vcpu_topology"] == "1/4/1"

    pvc("vm", "vcpu", "set", "bare", "4", "-t", "2,2,1", "-R")
    assert json.loads(pvc("vm", "vcpu", "get", "bare", "-f", "json"))["sockets"] == 2
    assert client.get("/api/v1/vm/bare", headers=headers).json[0]["vcpu_topology"] == "2/2/1"
