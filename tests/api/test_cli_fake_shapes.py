"""The CLI tests' fake API serves only what the real server serves.

Every GET the fake answers is sent to both: the fake (tests/cli) and the real API over a real
ZooKeeper, with two node daemons (libvirt test drivers), two VMs, a fault and a running task.
The answers must have the same keys and value types, and the values the server fixes (a node's
health, the fault messages it writes, status counts derived from the VM list) must agree, so a
CLI test cannot pass on something the server never sends.
"""

from __future__ import annotations

import pytest

from pvc.cluster.faults import checks
from pvc.cluster.tasks import actions as task_actions
from pvc.domain_xml import build as domain_xml
from pvc.state import networks
from pvc.state.records import NodeRecord, NodeStatic
from pvc.state.states import DaemonState
from pvc.tasks.builtin import sleep
from tests.api.conftest import start_hypervisor_nodes
from tests.cli.fakeapi import API_KEY
from tests.cli.fakeapi_network import FakeNetworkApi, build_network_app
from tests.cli.fakeapi_vm import FakeVmApi, build_vm_app
from tests.cli.shapes import shape_errors
from tests.helpers import wait_for

PREFIX = "/api/v1"
NODES = ["hv1", "hv2"]
#: Objects keyed by data rather than by field names.
MAPS = frozenset(
    {"$.node_health", "$.nodes", "$.vms", "$.osds", "$.active", "$.reserved", "$.scheduled"}
    | {"$.detail.node[].interfaces", "$[].interfaces"}  # keyed by network device
)
#: Free-form objects: a task's arguments depend on its type.
OPAQUE = frozenset(f"$.{group}.*[].kwargs" for group in ("active", "reserved", "scheduled"))
#: Every GET the fake API serves (its storage endpoints need Ceph: see tests/storage).
PATHS = [
    "/",
    "/status",
    "/status/primary_node",
    "/node",
    "/node/hv1",
    "/node/hv1/log?lines=5",
    "/faults",
    "/tasks",
    "/vm",
    "/vm/vm1",
    "/vm/vm1/tags",
    "/vm/vm1/console",
    "/network",
    "/network/100",
    "/network/200",
    "/network/100/lease",
    "/network/100/lease/52:54:00:00:00:01",
    "/network/100/lease/52:54:00:00:00:02",
    "/network/100/acl",
    "/network/100/acl/ssh",
]


@pytest.fixture(scope="module")
def fake():
    return build_network_app(FakeNetworkApi()).test_client()


def fake_get(client, path: str):
    response = client.get(PREFIX + path, headers={"X-Api-Key": API_KEY})
    assert response.status_code == 200, (path, response.json)
    return response.json


@pytest.fixture
def real(api, cluster, test_driver_uri):
    client, context = api
    start_hypervisor_nodes(cluster, context, NODES, test_driver_uri)
    for name in ("vm1", "vm2"):
        xml = domain_xml.build(domain_xml.DomainSpec(name=name, memory_mib=64))
        assert client.post(f"{PREFIX}/vm", data={"xml": xml, "node": "hv1"}).status_code == 200
    client.post(f"{PREFIX}/vm/vm1/tags", data={"action": "add", "tag": "web"})
    assert client.post(f"{PREFIX}/vm/vm1/state", data={"state": "start", "wait": "true"}).status_code == 200
    # a running VM's statistics arrive with its node's next keepalive
    wait_for(lambda: client.get(f"{PREFIX}/vm/vm1").json[0]["vcpu_stats"])
    assert client.post(f"{PREFIX}/vm/vm2/node", data={"action": "migrate", "node": "hv2"}).status_code == 200
    from pvc.cluster.faults import actions as faults

    faults.report(context.cluster, "dead_node", "hv9", 50, "Node hv9 is dead", maintenance=False)
    wait_for(lambda: client.get(f"{PREFIX}/faults").json)
    _add_networks(client, context)
    task_actions.submit(context.cluster, sleep, "hv1", {"seconds": 30, "steps": 30})
    wait_for(lambda: any(client.get(f"{PREFIX}/tasks").json["active"].values()))
    return client


def _add_networks(client, context) -> None:
    """Networks 100 (managed, with a reservation, a lease and ACLs) and 200 (bridged), as the fake has."""
    managed = {
        "vni": "100",
        "description": "web",
        "nettype": "managed",
        "domain": "web.example.com",
        "name_servers": "10.100.0.1",
        "ip4_network": "10.100.0.0/24",
        "ip4_gateway": "10.100.0.1",
        "dhcp4": "true",
        "dhcp4_start": "10.100.0.100",
        "dhcp4_end": "10.100.0.199",
        "ip6_network": "2001:db8:100::/64",
        "ip6_gateway": "2001:db8:100::1",
    }
    calls = [
        ("/network", managed),
        ("/network", {"vni": "200", "description": "vlan200", "nettype": "bridged", "mtu": "9000"}),
        (
            "/network/100/lease",
            {"macaddress": "52:54:00:00:00:01", "ipaddress": "10.100.0.10", "hostname": "vm1"},
        ),
        ("/network/100/acl", {"description": "ssh", "rule": "tcp dport 22 accept"}),
        ("/network/100/acl", {"description": "egress", "rule": "accept", "direction": "out"}),
    ]
    for path, data in calls:
        response = client.post(f"{PREFIX}{path}", data=data)
        assert response.status_code == 200, (path, response.json)
    networks.put_lease(
        context.cluster.store, 100, "52:54:00:00:00:02", "10.100.0.150", hostname="vm2", expiry=1
    )
    wait_for(lambda: len(client.get(f"{PREFIX}/network/100/lease").json) == 2)


def real_get(client, path: str):
    response = client.get(PREFIX + path)
    assert response.status_code == 200, (path, response.json)
    return response.json


def test_every_fake_answer_has_the_real_shape(fake, real):
    differences = {}
    for path in PATHS:
        errors = shape_errors(fake_get(fake, path), real_get(real, path), maps=MAPS, opaque=OPAQUE)
        if errors:
            differences[path] = errors
    assert differences == {}, "\n".join(f"{p}: {e}" for p, errs in differences.items() for e in errs)


def test_the_fake_serves_what_the_server_fixes(fake, real):
    real_nodes = real_get(real, "/node")
    for node in fake_get(fake, "/node"):  # nothing measures node health yet: the server says N/A
        assert (node["health"], node["health_plugins"], node["health_details"]) == (
            real_nodes[0]["health"],
            real_nodes[0]["health_plugins"],
            real_nodes[0]["health_details"],
        )
    status = fake_get(fake, "/status")
    assert {v["health"] for v in status["node_health"].values()} == {
        real_get(real, "/status")["node_health"]["hv1"]["health"]
    }


def _vm_counts(vms: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {"total": len(vms)}
    for vm in vms:
        counts[vm["state"]] = counts.get(vm["state"], 0) + 1
    return counts


def test_status_counts_the_vms_listed_in_both(fake, real):
    assert real_get(real, "/status")["vms"] == _vm_counts(real_get(real, "/vm"))
    assert fake_get(fake, "/status")["vms"] == _vm_counts(fake_get(fake, "/vm"))


def test_status_counts_the_networks_listed_in_both(fake, real):
    assert real_get(real, "/status")["networks"] == len(real_get(real, "/network")) == 2
    assert fake_get(fake, "/status")["networks"] == len(fake_get(fake, "/network")) == 2


def _health(faults: list[dict]) -> int:
    return max(0, 100 - sum(f["health_delta"] for f in faults if f["status"] != "ack"))


def test_cluster_health_follows_the_faults_in_both(fake, real):
    assert real_get(real, "/status")["cluster_health"]["health"] == _health(real_get(real, "/faults"))
    assert fake_get(fake, "/status")["cluster_health"]["health"] == _health(fake_get(fake, "/faults"))


def test_the_fakes_faults_are_ones_the_server_writes():
    fake = build_vm_app(FakeVmApi()).test_client()
    found = [
        NodeRecord(name="hv2", static=NodeStatic(name="hv2"), daemon_state=DaemonState.DEAD),
        NodeRecord(name="hv3", static=NodeStatic(name="hv3"), daemon_state=DaemonState.STOP),
    ]
    written = {finding.message: finding.delta for finding in checks.find(found, [], 30.0)}
    served = {fault["message"]: fault["health_delta"] for fault in fake_get(fake, "/faults")}
    assert served == written
