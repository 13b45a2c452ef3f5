"""The SR-IOV endpoints over a real ZooKeeper: PF and VF lists in the v1 shapes, which VM uses a
VF, and a VF's settings: checked (400 with a message), recorded, shown."""

from __future__ import annotations

import pytest

from pvc.state import paths
from pvc.state import sriov as records
from pvc.state.sriov import VfConfig
from tests.sriov_data import HV1_VFS, populate

PREFIX = "/api/v1"


@pytest.fixture
def sriov_api(api):
    client, context = api
    uuids, commit = populate(context.cluster.store)
    context.cluster.settle(commit)
    return client, context, uuids


def test_pfs_in_the_v1_shape(sriov_api) -> None:
    client, _, _ = sriov_api
    expected = [
        {"phy": "ens1f0", "mtu": "9000", "vfs": ["ens1f0v0", "ens1f0v1", "ens1f0v2", "ens1f0v3"]},
        {"phy": "ens1f1", "mtu": "1500", "vfs": ["ens1f1v0"]},
    ]
    assert client.get(f"{PREFIX}/sriov/pf/hv1").json == expected
    assert client.get(f"{PREFIX}/sriov/pf", query_string={"node": "hv1"}).json == expected
    assert [pf["phy"] for pf in client.get(f"{PREFIX}/sriov/pf/hv2").json] == ["ens1f0"]


def test_vfs_in_the_v1_shape_with_their_users(sriov_api) -> None:
    client, _, uuids = sriov_api
    listed = client.get(f"{PREFIX}/sriov/vf/hv1").json
    assert [vf["phy"] for vf in listed] == ["ens1f0v0", "ens1f0v1", "ens1f0v2", "ens1f0v3", "ens1f1v0"]
    first = listed[0]
    assert first == {
        "phy": "ens1f0v0",
        "pf": "ens1f0",
        "mtu": 1500,
        "mac": "52:54:00:01:10:00",
        "pci": "0000:01:10.0",  # beyond v1: what a hostdev interface names
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
        "usage": {"used": True, "domain": uuids["mac1"]},
    }
    usage = {vf["phy"]: vf["usage"] for vf in listed}
    assert usage["ens1f0v1"] == {"used": True, "domain": uuids["pci1"]}  # hostdev, VM stopped
    assert usage["ens1f0v2"] == {"used": False, "domain": None}
    # hv2's ens1f0v0 is used by mac2, not mac1
    assert client.get(f"{PREFIX}/sriov/vf/hv2").json[0]["usage"]["domain"] == uuids["mac2"]


def test_vfs_of_one_pf(sriov_api) -> None:
    client, _, _ = sriov_api
    only = client.get(f"{PREFIX}/sriov/vf/hv1", query_string={"pf": "ens1f1"}).json
    assert [vf["phy"] for vf in only] == ["ens1f1v0"]
    both = client.get(f"{PREFIX}/sriov/vf", query_string={"node": "hv1", "pf": "ens1f1"}).json
    assert both == only
    assert client.get(f"{PREFIX}/sriov/vf", query_string={"node": "hv1", "pf": "ens9"}).json == []
    assert len(client.get(f"{PREFIX}/sriov/vf", query_string={"node": "hv1"}).json) == len(HV1_VFS)


def test_one_vf_is_a_one_element_list(sriov_api) -> None:
    client, _, _ = sriov_api
    one = client.get(f"{PREFIX}/sriov/vf/hv1/ens1f0v3").json
    assert one == [client.get(f"{PREFIX}/sriov/vf/hv1").json[3]]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/sriov/pf/hv9", "Node 'hv9' not found"),
        ("/sriov/vf/hv9", "Node 'hv9' not found"),
        ("/sriov/vf/hv9/ens1f0v0", "Node 'hv9' not found"),
        ("/sriov/vf/hv1/ens1f0v9", "VF 'ens1f0v9' not found on node 'hv1'"),
        ("/sriov/pf?node=hv9", "Node 'hv9' not found"),
    ],
)
def test_unknown_nodes_and_vfs_are_404(sriov_api, path: str, message: str) -> None:
    client, _, _ = sriov_api
    response = client.get(PREFIX + path)
    assert response.status_code == 404 and response.json == {"message": message}


def test_the_node_argument_is_required(sriov_api) -> None:
    client, _, _ = sriov_api
    for path in ("/sriov/pf", "/sriov/vf"):
        response = client.get(PREFIX + path)
        assert response.status_code == 400 and "'node' is required" in response.json["message"]


def test_a_node_without_sriov_has_none(api) -> None:
    client, context = api
    from pvc.state import nodes
    from pvc.state.records import NodeStatic

    context.cluster.settle(nodes.register(context.cluster.store, NodeStatic(name="hv3")))
    assert client.get(f"{PREFIX}/sriov/pf/hv3").json == []
    assert client.get(f"{PREFIX}/sriov/vf/hv3").json == []


def _asked(context, vf: str = "ens1f0v2") -> VfConfig:
    return records.read_vf_config(context.cluster.store.get, "hv1", vf)


def test_setting_a_vf_records_it_and_shows_it(sriov_api) -> None:
    client, context, _ = sriov_api
    put = client.put(
        f"{PREFIX}/sriov/vf/hv1/ens1f0v2",
        query_string={"vlan_id": "100", "vlan_qos": "3", "trust": "Yes", "link_state": "enable"},
    )
    assert put.status_code == 200, put.json
    assert put.json["message"] == (
        "Set VF 'ens1f0v2' on node 'hv1' to vlan_id=100, vlan_qos=3, link_state=enable, trust=True; "
        "the node applies it"
    )
    assert _asked(context) == VfConfig(vlan_id=100, vlan_qos=3, link_state="enable", trust=True)
    shown = client.get(f"{PREFIX}/sriov/vf/hv1/ens1f0v2").json[0]["config"]
    assert shown == {
        "vlan_id": "100",
        "vlan_qos": "3",
        "tx_rate_min": "0",
        "tx_rate_max": "0",
        "spoof_check": True,
        "link_state": "enable",
        "trust": True,
        "query_rss": False,
    }
    # a later change keeps what was asked before; form bodies work as the query string does
    again = client.put(f"{PREFIX}/sriov/vf/hv1/ens1f0v2", data={"tx_rate_max": "1000", "spoof_check": "0"})
    assert again.status_code == 200, again.json
    assert _asked(context) == VfConfig(
        vlan_id=100, vlan_qos=3, tx_rate_max=1000, spoof_check=False, link_state="enable", trust=True
    )


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"vlan_id": "4095"}, "vlan_id must be 0 to 4094, not 4095"),
        ({"vlan_id": "-1"}, "'vlan_id' must be at least 0"),
        ({"vlan_id": "ten"}, "'vlan_id' must be an integer, not 'ten'"),
        ({"vlan_qos": "8"}, "vlan_qos must be 0 to 7, not 8"),
        ({"tx_rate_min": "-5"}, "'tx_rate_min' must be at least 0"),
        ({"tx_rate_min": "500", "tx_rate_max": "100"}, "tx_rate_min (500) must not exceed tx_rate_max (100"),
        ({"link_state": "up"}, "'link_state' must be one of auto, enable, disable; got 'up'"),
        ({"trust": "maybe"}, "'trust' must be true or false"),
        ({"spoof_check": ""}, "'spoof_check' must be true or false"),
        ({"query_rss": "2"}, "'query_rss' must be true or false"),
        ({}, "No VF setting given"),
    ],
)
def test_bad_settings_are_400_and_change_nothing(sriov_api, query: dict, words: str) -> None:
    client, context, _ = sriov_api
    response = client.put(f"{PREFIX}/sriov/vf/hv1/ens1f0v2", query_string=query)
    assert response.status_code == 400, response.json
    assert words in response.json["message"]
    assert not context.cluster.store.exists(paths.node_sriov_config("hv1", "ens1f0v2"))


def test_rates_are_checked_with_what_was_asked_before(sriov_api) -> None:
    client, context, _ = sriov_api
    url = f"{PREFIX}/sriov/vf/hv1/ens1f0v2"
    assert client.put(url, query_string={"tx_rate_max": "100"}).status_code == 200
    refused = client.put(url, query_string={"tx_rate_min": "500"})
    assert (
        refused.status_code == 400
        and "tx_rate_min (500) must not exceed tx_rate_max (100" in refused.json["message"]
    )
    assert _asked(context) == VfConfig(tx_rate_max=100)
    # no limit (0) takes any minimum
    assert client.put(url, query_string={"tx_rate_max": "0", "tx_rate_min": "500"}).status_code == 200
    assert _asked(context) == VfConfig(tx_rate_min=500, tx_rate_max=0)


def test_setting_an_unknown_node_or_vf_is_404(sriov_api) -> None:
    client, context, _ = sriov_api
    for path, message in (
        ("/sriov/vf/hv9/ens1f0v0", "Node 'hv9' not found"),
        ("/sriov/vf/hv1/ens1f0v9", "VF 'ens1f0v9' not found on node 'hv1'"),
    ):
        response = client.put(PREFIX + path, query_string={"vlan_id": "5"})
        assert response.status_code == 404 and response.json == {"message": message}
    assert not context.cluster.store.exists(paths.node_sriov_configs("hv1"))
