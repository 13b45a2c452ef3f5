"""Endpoints of the cluster, node, fault, backup and metrics groups, against live NodeLoops."""

from __future__ import annotations

import json

from pvc.cluster.faults import actions as faults
from pvc.cluster.faults import checks
from pvc.cluster.faults.queries import fault_id
from pvc.state import paths
from pvc.state.schema import CURRENT_VERSION
from tests.helpers import wait_for

PREFIX = "/api/v1"
COORDS = ["n1", "n2"]
CONFIRM = {"yes-i-really-mean-it": "yes"}


def start_nodes(cluster):
    return [cluster(name, COORDS, index=i) for i, name in enumerate(COORDS, start=1)]


def current_primary(client) -> str | None:
    name = get(client, "/status/primary_node").json["primary_node"]
    return name if name in COORDS else None


def get(client, path, **params):
    return client.get(PREFIX + path, query_string=params)


def test_status_shape(api, cluster):
    client, _ = api
    start_nodes(cluster)
    wait_for(lambda: get(client, "/status").json["nodes"].get("run,ready") == 2)
    body = get(client, "/status").json
    assert body["cluster_health"] == {"health": 100, "messages": []}
    assert body["maintenance"] == "false"
    assert body["primary_node"] in COORDS
    assert body["nodes"]["total"] == 2
    assert body["upstream_ip"] == "10.100.0.250" and body["cluster_name"] == "test"
    assert body["pvc_version"]
    assert body["resources"]["memory"]["total"] > 0 and body["resources"]["cpu"]["total"] > 0
    assert {"node", "vm", "osd", "faults"} <= set(body["detail"])
    # No health plugin measures node health yet: unknown, never a made-up 100.
    assert body["node_health"] == {name: {"health": "N/A", "messages": []} for name in COORDS}
    assert get(client, "/status/primary_node").json == {"primary_node": body["primary_node"]}


def test_node_list_filters_and_elements(api, cluster):
    client, _ = api
    start_nodes(cluster)
    wait_for(lambda: len(get(client, "/node", daemon_state="run").json) == 2)
    assert [n["name"] for n in get(client, "/node", limit="1").json] == ["n1"]
    assert [n["name"] for n in get(client, "/node", limit="^n2$").json] == ["n2"]
    assert get(client, "/node", coordinator_state="client").json == []
    one = get(client, "/node/n1").json
    assert isinstance(one, list) and len(one) == 1
    node = one[0]
    for key in (
        "daemon_state",
        "coordinator_state",
        "domain_state",
        "cpu_count",
        "kernel",
        "os",
        "arch",
        "load",
        "memory",
        "vcpu",
        "health",
        "pvc_version",
    ):
        assert key in node
    assert (node["health"], node["health_plugins"], node["health_details"]) == ("N/A", [], [])
    missing = get(client, "/node/nosuch")
    assert missing.status_code == 404 and "nosuch" in missing.json["message"]
    assert get(client, "/node/n1/daemon-state").json == {"name": "n1", "daemon_state": "run"}
    assert get(client, "/node/n1/domain-state").json == {"name": "n1", "domain_state": "ready"}
    assert get(client, "/node/nosuch/coordinator-state").status_code == 404


def test_moving_the_primary_through_the_api(api, cluster):
    client, _ = api
    start_nodes(cluster)
    primary = wait_for(
        lambda: (p := get(client, "/status/primary_node").json["primary_node"]) in COORDS and p
    )
    other = next(n for n in COORDS if n != primary)
    wait_for(lambda: get(client, f"/node/{other}").json[0]["coordinator_state"] == "secondary")
    already = client.post(f"{PREFIX}/node/{primary}/coordinator-state", query_string={"state": "primary"})
    assert already.status_code == 200 and "already" in already.json["message"]
    moved = client.post(f"{PREFIX}/node/{other}/coordinator-state", query_string={"state": "primary"})
    assert moved.status_code == 200 and "already" not in moved.json["message"]
    wait_for(lambda: get(client, f"/node/{other}").json[0]["coordinator_state"] == "primary", 10)
    wait_for(lambda: get(client, f"/node/{primary}").json[0]["coordinator_state"] == "secondary", 10)
    # and back with "secondary"
    back = client.post(f"{PREFIX}/node/{other}/coordinator-state", query_string={"state": "secondary"})
    assert back.status_code == 200
    wait_for(lambda: get(client, "/status/primary_node").json["primary_node"] == primary, 10)


def test_hypervisor_cannot_be_primary(api, cluster):
    client, _ = api
    cluster("c1", ["c1"])
    cluster("h1", ["c1"], index=2)
    wait_for(lambda: len(get(client, "/node", daemon_state="run").json) == 2)
    refused = client.post(f"{PREFIX}/node/h1/coordinator-state", query_string={"state": "primary"})
    assert refused.status_code == 400 and "not a coordinator" in refused.json["message"]


def test_flush_and_ready_complete_on_the_node(api, cluster):
    client, _ = api
    start_nodes(cluster)
    wait_for(lambda: len(get(client, "/node", daemon_state="run").json) == 2)
    reply = client.post(f"{PREFIX}/node/n2/domain-state", query_string={"state": "flush"})
    assert reply.status_code == 200
    wait_for(lambda: get(client, "/node/n2/domain-state").json["domain_state"] == "flushed", 10)
    again = client.post(f"{PREFIX}/node/n2/domain-state", query_string={"state": "flush"})
    assert "already" in again.json["message"]
    client.post(f"{PREFIX}/node/n2/domain-state", data={"state": "ready"})
    wait_for(lambda: get(client, "/node/n2/domain-state").json["domain_state"] == "ready", 10)
    assert (
        client.post(f"{PREFIX}/node/nosuch/domain-state", query_string={"state": "flush"}).status_code == 400
    )


def test_node_log(api, cluster):
    client, _ = api
    start_nodes(cluster)
    wait_for(lambda: "registered" in get(client, "/node/n1/log").json.get("data", ""), 10)
    body = get(client, "/node/n1/log", lines=1).json
    assert body["name"] == "n1" and len(body["data"].splitlines()) == 1
    assert get(client, "/node/nosuch/log").status_code == 404


def test_faults_lifecycle_and_health(api):
    client, context = api
    store, cache = context.cluster.store, context.cluster.cache
    faults.report(context.cluster, "dead_node", "n9", 50, "Node n9 is dead", maintenance=False)
    faults.report(context.cluster, "daemon_not_running", "n8", 25, "n8 stopped", maintenance=False)
    wait_for(lambda: len(get(client, "/faults").json) == 2)
    assert get(client, "/status").json["cluster_health"]["health"] == 25
    listed = get(client, "/faults", sort_key="health_delta").json
    assert [f["health_delta"] for f in listed] == [50, 25]
    fid = listed[0]["id"]
    assert get(client, f"/faults/{fid}").json[0]["message"] == "Node n9 is dead"
    assert client.put(f"{PREFIX}/faults/{fid}").status_code == 200
    wait_for(lambda: get(client, f"/faults/{fid}").json[0]["status"] == "ack")
    wait_for(lambda: get(client, "/status").json["cluster_health"]["health"] == 75)
    assert client.put(f"{PREFIX}/faults").status_code == 200
    wait_for(lambda: get(client, "/status").json["cluster_health"]["health"] == 100)
    assert client.delete(f"{PREFIX}/faults/{fid}").status_code == 200
    wait_for(lambda: len(get(client, "/faults").json) == 1)
    assert client.delete(f"{PREFIX}/faults").status_code == 200
    wait_for(lambda: get(client, "/faults").json == [])
    for method in ("get", "put", "delete"):
        assert getattr(client, method)(f"{PREFIX}/faults/nosuch").status_code == 404
    # maintenance mode suppresses new faults
    store.set(paths.MAINTENANCE, "true")
    wait_for(lambda: cache.cluster_config().maintenance)
    assert faults.report(context.cluster, "dead_node", "n7", 50, "n7", maintenance=True) is None
    assert get(client, "/faults").json == []


def test_primary_raises_a_fault_for_a_stopped_node(api, cluster):
    client, _ = api
    nodes = start_nodes(cluster)
    primary = wait_for(
        lambda: (p := get(client, "/status/primary_node").json["primary_node"]) in COORDS and p
    )
    other = next(node for node in nodes if node.name != primary)
    other.stop()
    listed = wait_for(lambda: get(client, "/faults").json, 10)
    assert other.name in listed[0]["message"] and listed[0]["health_delta"] == checks.DELTA_DAEMON_NOT_RUNNING


def test_backup_restore_initialize(api):
    client, context = api
    context.cluster.store.set("/config/cluster_name", "before")
    dump = json.loads(get(client, "/backup").json)
    assert dump["/config/cluster_name"] == "before" and "/schema/version" in dump
    assert not any(key.startswith("/locks") for key in dump)
    context.cluster.store.set("/config/cluster_name", "after")
    for bad, words in (
        ("not json", "not valid JSON"),
        ('{"/etc/passwd": "x", "/schema/version": "1"}', "outside"),
        ('{"/config/x": "1"}', "not a PVC backup"),
        ("[]", "JSON object"),
    ):
        response = client.post(f"{PREFIX}/restore", data={"cluster_data": bad, "yes-i-really-mean-it": "yes"})
        assert response.status_code == 400 and words in response.json["message"]
    store = context.cluster.store
    assert store.get_text("/config/cluster_name") == "after"  # nothing written by rejected requests
    ok = client.post(
        f"{PREFIX}/restore", data={"cluster_data": json.dumps(dump), "yes-i-really-mean-it": "yes"}
    )
    assert ok.status_code == 200
    assert context.cluster.store.get_text("/config/cluster_name") == "before"
    refused = client.post(f"{PREFIX}/initialize", query_string=CONFIRM)
    assert refused.status_code == 400 and "already initialized" in refused.json["message"]
    context.cluster.store.set("/nodes/ghost", "x")
    wiped = client.post(
        f"{PREFIX}/initialize", query_string={"yes-i-really-mean-it": "yes", "overwrite": "True"}
    )
    assert wiped.status_code == 200
    assert not store.exists("/nodes/ghost") and store.exists("/schema/version")


def test_metrics_text(api, cluster):
    client, _ = api
    start_nodes(cluster)
    wait_for(lambda: len(get(client, "/node", daemon_state="run").json) == 2)
    text = get(client, "/metrics").get_data(as_text=True)
    assert "pvc_cluster_health 100.0" in text
    assert 'pvc_node_daemon_state{node="n1",state="run"} 1.0' in text
    assert "pvc_cluster_maintenance 0.0" in text
    assert get(client, "/metrics").content_type.startswith("text/plain")
    assert "pvc_node_load" not in get(client, "/metrics/health").get_data(as_text=True)
    assert "pvc_node_load" in get(client, "/metrics/resource").get_data(as_text=True)
    assert "pvc_node_health{" not in text  # not measured: no sample rather than a made-up one


def test_database_metrics_follow_patronis_records(api):
    import json as json_mod

    from pvc.state import paths

    client, context = api
    store = context.cluster.store
    assert "pvc_database" not in get(client, "/metrics").get_data(as_text=True)  # none registered: no samples
    members = paths.patroni_members("test")
    for name, role, state in (
        ("hv1", "primary", "running"),
        ("hv2", "replica", "running"),
        ("hv3", "replica", "stopped"),
    ):
        record = {"conn_url": f"postgres://10.0.0.{name[-1]}:5432/postgres", "role": role, "state": state}
        store.ensure(members)
        store.set(f"{members}/{name}", json_mod.dumps(record).encode(), create=True)
    store.set(paths.patroni_leader("test"), b"hv1", create=True)
    text = get(client, "/metrics/resource").get_data(as_text=True)
    assert 'pvc_database_members{role="primary",state="running"} 1.0' in text
    assert 'pvc_database_members{role="replica",state="running"} 1.0' in text
    assert 'pvc_database_members{role="replica",state="stopped"} 1.0' in text
    assert "pvc_database_leader 1.0" in text
    store.set(paths.patroni_leader("test"), b"hv3")  # a leader that does not run
    assert "pvc_database_leader 0.0" in get(client, "/metrics/resource").get_data(as_text=True)


def test_reinitialising_a_live_cluster_brings_its_daemons_back(api, cluster):
    client, _ = api
    start_nodes(cluster)
    wait_for(lambda: current_primary(client))
    wiped = client.post(f"{PREFIX}/initialize", query_string={**CONFIRM, "overwrite": "True"})
    assert wiped.status_code == 200

    def recovered() -> bool:
        nodes = get(client, "/node").json
        states = sorted((n["daemon_state"], n["coordinator_state"]) for n in nodes)
        return states == [("run", "primary"), ("run", "secondary")] and current_primary(client) is not None

    wait_for(recovered, 15)


def test_backup_initialize_restore_round_trip(api):
    client, context = api
    context.cluster.store.set("/config/cluster_name", "precious")
    context.cluster.store.set("/nodes/hv9", "{}")
    dump = json.loads(get(client, "/backup").json)
    assert all(
        any(
            k == r or k.startswith(r + "/")
            for r in (
                "/config",
                "/nodes",
                "/schema",
                "/domains",
                "/domain_names",
                "/networks",
                "/ceph",
                "/faults",
                "/tasks",
                "/logs",
            )
        )
        for k in dump
    )
    client.post(f"{PREFIX}/initialize", query_string={**CONFIRM, "overwrite": "True"})
    assert not context.cluster.store.exists("/nodes/hv9")
    restored = client.post(f"{PREFIX}/restore", data={"cluster_data": json.dumps(dump), **CONFIRM})
    assert restored.status_code == 200, restored.json
    store = context.cluster.store
    assert store.get_text("/config/cluster_name") == "precious" and store.exists("/nodes/hv9")


def test_restore_rejects_unsafe_paths_and_versions(api):
    client, context = api
    base = {"/schema/version": "1"}
    for data, words in (
        ({**base, "/config/..": "x"}, "invalid path"),
        ({**base, "/config/a/./b": "x"}, "invalid path"),
        ({**base, "/config/big": "x" * 600_000}, "larger than"),
        ({"/schema/version": "abc"}, "schema version"),
        ({"/schema/version": "99"}, "schema version"),
    ):
        response = client.post(f"{PREFIX}/restore", data={"cluster_data": json.dumps(data), **CONFIRM})
        assert response.status_code == 400 and words in response.json["message"], (data.keys(), response.json)
    assert context.cluster.store.get_text("/schema/version") == str(CURRENT_VERSION)


def test_node_limit_is_a_regular_expression(api, cluster):
    client, _ = api
    start_nodes(cluster)
    wait_for(lambda: len(get(client, "/node").json) == 2)
    assert [n["name"] for n in get(client, "/node", limit="n[12]").json] == ["n1", "n2"]
    assert [n["name"] for n in get(client, "/node", limit="2$").json] == ["n2"]
    bad = get(client, "/node", limit="(")
    assert bad.status_code == 400 and "regular expression" in bad.json["message"]


def test_node_reports_its_hypervisor_allocation(api, cluster, test_driver_uri):
    from pvc.cluster.vm import actions, define
    from pvc.domain_xml import build as domain_xml
    from pvc.domain_xml.policy import XmlPolicy

    client, context = api
    cluster("n1", ["n1"], hypervisor_uri=test_driver_uri)
    wait_for(lambda: get(client, "/node/n1").status_code == 200, 10)
    xml = domain_xml.build(domain_xml.DomainSpec(name="alloc1", vcpus=2, memory_mib=96))
    uuid, _ = define.define(context.cluster, xml, node="n1", policy=XmlPolicy())
    assert context.cluster.cache.vm(uuid) is not None  # read-your-writes
    actions.request_state(context.cluster, uuid, "start")
    node = wait_for(lambda: (n := get(client, "/node/n1").json) and n[0]["running_domains"] and n[0], 10)
    assert node["running_domains"] == ["alloc1"] and node["domains_count"] == 1
    assert node["vcpu"]["allocated"] == 2 and node["memory"]["allocated"] == 96
    assert node["memory"]["provisioned"] >= node["memory"]["allocated"]
    assert get(client, "/status").json["resources"]["cpu"]["allocated"] == 2


def test_a_primary_without_api_authentication_raises_a_fault_until_it_is_back_on(api, cluster):
    client, _ = api
    fid = fault_id(*checks.API_AUTH_DISABLED)
    open_node = cluster("n1", ["n1"], api={"authentication": {"enabled": False}})
    listed = wait_for(lambda: [f for f in get(client, "/faults").json if f["id"] == fid], 10)
    assert "without an API key" in listed[0]["message"]
    assert listed[0]["health_delta"] == checks.DELTA_API_AUTH_DISABLED
    open_node.stop()
    cluster("n1", ["n1"])  # the same node, its API authenticated again
    wait_for(lambda: not [f for f in get(client, "/faults").json if f["id"] == fid], 10)
