"""Client networks through the API over a real ZooKeeper: v1 arguments, shapes and refusals."""

from __future__ import annotations

import ipaddress

import pytest

from pvc.cluster.network.rules import nft_rule_checker
from pvc.domain_xml.build import DomainSpec, build
from pvc.domain_xml.policy import XmlPolicy
from pvc.state import paths
from tests.helpers import metric_samples

PREFIX = "/api/v1"
MANAGED = {
    "vni": "100",
    "description": "web",
    "nettype": "managed",
    "domain": "web.example.com",
    "name_servers": ["10.100.0.1", "2001:db8::53"],
    "ip4_network": "10.100.0.0/24",
    "ip4_gateway": "10.100.0.1",
    "dhcp4": "true",
    "dhcp4_start": "10.100.0.100",
    "dhcp4_end": "10.100.0.199",
    "ip6_network": "2001:db8:100::/64",
    "ip6_gateway": "2001:db8:100::1",
}


def post(client, path, **data):
    return client.post(PREFIX + path, data=data)


def get(client, path, **params):
    return client.get(PREFIX + path, query_string=params)


def tree(context, vni) -> list[str]:
    """Every znode under a network, from ZooKeeper itself."""
    store = context.cluster.store
    found = []
    for parent in (paths.network_reservations(vni), paths.network_leases(vni), paths.network_acls(vni)):
        found += [f"{parent}/{child}" for child in store.children(parent)]
    return found


@pytest.fixture
def net(api):
    client, context = api
    response = post(client, "/network", **MANAGED)
    assert response.status_code == 200, response.json
    return client, context


def test_network_add_get_list_in_the_v1_shape(net):
    client, _ = net
    assert (
        post(client, "/network", vni="200", description="vlan200", nettype="bridged", mtu="").status_code
        == 200
    )
    element = get(client, "/network/100").json
    assert element == [
        {
            "vni": 100,
            "description": "web",
            "type": "managed",
            "mtu": None,
            "domain": "web.example.com",
            "name_servers": ["10.100.0.1", "2001:db8::53"],
            "ip4": {
                "network": "10.100.0.0/24",
                "gateway": "10.100.0.1",
                "dhcp_flag": True,
                "dhcp_start": "10.100.0.100",
                "dhcp_end": "10.100.0.199",
            },
            "ip6": {"network": "2001:db8:100::/64", "gateway": "2001:db8:100::1", "dhcp_flag": True},
        }
    ]
    listed = get(client, "/network").json
    assert [n["vni"] for n in listed] == [100, 200]
    assert listed[0] == element[0]
    assert [n["vni"] for n in get(client, "/network", limit="vlan").json] == [200]
    assert [n["vni"] for n in get(client, "/network", limit="^10").json] == [100]
    assert get(client, "/network/web").json == element  # by description, too
    missing = get(client, "/network/300")
    assert missing.status_code == 404 and "not found" in missing.json["message"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"vni": "0"}, "VNI '0' is invalid"),
        ({"vni": "16777216"}, "VNI '16777216' is invalid"),
        ({"vni": "x"}, "'vni' must be an integer"),
        ({"description": "has space"}, "Description 'has space' is invalid"),
        ({"description": "x" * 33}, "is invalid"),
        ({"mtu": "9001"}, "MTU '9001' is invalid"),
        ({"domain": "bad_domain.com"}, "not a valid DNS name"),
        ({"name_servers": ["10.0.0.300"]}, "Name server '10.0.0.300' is not an IP address"),
        ({"ip4_network": "10.100.0.1/24"}, "has host bits set; did you mean 10.100.0.0/24"),
        ({"ip4_gateway": "10.101.0.1"}, "is not inside the network"),
        ({"ip4_gateway": "10.100.0.255"}, "broadcast address"),
        ({"dhcp4_start": "10.100.1.5"}, "DHCPv4 start 10.100.1.5 is not inside"),
        ({"dhcp4_start": "10.100.0.200"}, "is after its end"),
        ({"ip4_gateway": "10.100.0.150"}, "inside the DHCPv4 range"),
        ({"domain": ""}, "needs a domain"),
        ({"ip6_gateway": "2001:db8:101::1"}, "is not inside the network"),
        ({"nettype": "routed"}, "must be one of managed, bridged"),
        ({"dhcp4": "maybe"}, "'dhcp4' must be true or false"),
    ],
)
def test_network_add_refusals_write_nothing(api, change, words):
    client, context = api
    response = post(client, "/network", **{**MANAGED, **change})
    assert response.status_code == 400, response.json
    assert words in response.json["message"]
    assert context.cluster.store.children(paths.NETWORKS) == []


def test_bridged_networks_are_vlans_without_addresses(api):
    client, _ = api
    big = post(client, "/network", vni="5000", description="b", nettype="bridged")
    assert big.status_code == 400 and "VLAN id, 1-4094" in big.json["message"]
    addressed = post(
        client, "/network", vni="50", description="b", nettype="bridged", ip4_network="10.0.0.0/24"
    )
    assert addressed.status_code == 400 and "remove ip4_network" in addressed.json["message"]
    assert (
        post(client, "/network", vni="50", description="b", nettype="bridged", mtu="9000").status_code == 200
    )
    assert get(client, "/network/50").json[0]["mtu"] == 9000


def test_duplicates_and_overlaps_are_refused(net):
    client, _ = net
    again = post(client, "/network", **{**MANAGED, "description": "other", "ip4_network": "10.9.0.0/24"})
    assert again.status_code == 400 and "VNI 100 already exists" in again.json["message"]
    overlap = post(
        client,
        "/network",
        vni="101",
        description="other",
        nettype="managed",
        ip4_network="10.100.0.128/25",
        ip4_gateway="10.100.0.129",
    )
    assert overlap.status_code == 400 and "overlaps 10.100.0.0/24 of network 100" in overlap.json["message"]
    overlap6 = post(
        client,
        "/network",
        vni="101",
        description="other",
        nettype="managed",
        domain="x.org",
        ip6_network="2001:db8:100::/48",
        ip6_gateway="2001:db8:100::2",
    )
    assert overlap6.status_code == 400 and "overlaps 2001:db8:100::/64" in overlap6.json["message"]
    named = post(client, "/network", vni="101", description="web", nettype="bridged")
    assert named.status_code == 400 and "described 'web' already exists" in named.json["message"]


def test_modify_replaces_given_fields_and_clears_empty_ones(net):
    client, _ = net
    response = client.put(
        f"{PREFIX}/network/100", data={"description": "web2", "mtu": "1400", "ip6_network": ""}
    )
    assert response.status_code == 400 and "IPv6 gateway needs" in response.json["message"]
    response = client.put(
        f"{PREFIX}/network/100",
        data={"description": "web2", "mtu": "1400", "ip6_network": "", "ip6_gateway": "", "name_servers": ""},
    )
    assert response.status_code == 200, response.json
    shown = get(client, "/network/100").json[0]
    assert (shown["description"], shown["mtu"], shown["name_servers"]) == ("web2", 1400, [])
    assert shown["ip6"] == {"network": "", "gateway": "", "dhcp_flag": False}
    assert shown["ip4"]["dhcp_start"] == "10.100.0.100"  # untouched
    off = client.put(f"{PREFIX}/network/100", data={"dhcp4": "false"})
    assert off.status_code == 200, off.json
    ip4 = get(client, "/network/100").json[0]["ip4"]
    assert (ip4["dhcp_flag"], ip4["dhcp_start"], ip4["dhcp_end"]) == (False, "", "")
    assert client.put(f"{PREFIX}/network/999", data={"mtu": "1500"}).status_code == 404


def test_reservations_and_leases(net):
    client, context = net
    added = post(
        client, "/network/100/lease", macaddress="52:54:00:AA:BB:01", ipaddress="10.100.0.10", hostname="db1"
    )
    assert added.status_code == 200, added.json
    refusals = [
        ({"macaddress": "52:54:00:aa:bb:01", "ipaddress": "10.100.0.11"}, "already has a reservation"),
        (
            {"macaddress": "52:54:00:aa:bb:02", "ipaddress": "10.100.0.10"},
            "already reserved for 52:54:00:aa:bb:01",
        ),
        ({"macaddress": "01:00:5e:00:00:01", "ipaddress": "10.100.0.12"}, "multicast"),
        ({"macaddress": "52:54:00", "ipaddress": "10.100.0.12"}, "MAC address '52:54:00' is invalid"),
        ({"macaddress": "52:54:00:aa:bb:03", "ipaddress": "10.100.0.1"}, "is the network's gateway"),
        ({"macaddress": "52:54:00:aa:bb:03", "ipaddress": "10.101.0.5"}, "is not inside the network"),
        ({"macaddress": "52:54:00:aa:bb:03", "ipaddress": "10.100.0.5", "hostname": "a.b"}, "no dots"),
    ]
    for data, words in refusals:
        response = post(client, "/network/100/lease", **data)
        assert response.status_code == 400 and words in response.json["message"], (data, response.json)
    from pvc.state import networks as records

    records.put_lease(
        context.cluster.store, 100, "52:54:00:AA:BB:09", "10.100.0.150", hostname="pc", expiry=1700000000
    )
    context.cluster.cache.wait_until(lambda: len(get(client, "/network/100/lease").json) == 2, 5)
    assert get(client, "/network/100/lease").json == [
        {
            "hostname": "db1",
            "ip4_address": "10.100.0.10",
            "mac_address": "52:54:00:aa:bb:01",
            "timestamp": "static",
        },
        {
            "hostname": "pc",
            "ip4_address": "10.100.0.150",
            "mac_address": "52:54:00:aa:bb:09",
            "timestamp": 1700000000,
        },
    ]
    assert [x["hostname"] for x in get(client, "/network/100/lease", static="true").json] == ["db1"]
    assert [x["hostname"] for x in get(client, "/network/100/lease", limit="bb:09").json] == ["pc"]
    assert get(client, "/network/100/lease/52:54:00:aa:bb:09").json[0]["hostname"] == "pc"
    assert get(client, "/network/100/lease/52:54:00:aa:bb:05").status_code == 404
    replaced = post(client, "/network/100/lease/52:54:00:aa:bb:01", ipaddress="10.100.0.20")
    assert replaced.status_code == 200, replaced.json
    assert get(client, "/network/100/lease/52:54:00:aa:bb:01").json[0]["ip4_address"] == "10.100.0.20"
    moved = client.put(
        f"{PREFIX}/network/100",
        data={
            "ip4_network": "10.200.0.0/24",
            "ip4_gateway": "10.200.0.1",
            "dhcp4_start": "10.200.0.100",
            "dhcp4_end": "10.200.0.199",
        },
    )
    assert (
        moved.status_code == 400 and "reservation of 52:54:00:aa:bb:01 would not fit" in moved.json["message"]
    )
    assert client.delete(f"{PREFIX}/network/100/lease/52:54:00:aa:bb:01").status_code == 200
    assert client.delete(f"{PREFIX}/network/100/lease/52:54:00:aa:bb:01").status_code == 404
    bridged = post(client, "/network", vni="7", description="v7", nettype="bridged")
    assert bridged.status_code == 200
    on_bridged = post(client, "/network/7/lease", macaddress="52:54:00:aa:bb:01", ipaddress="10.0.0.5")
    assert on_bridged.status_code == 400 and "does not serve DHCPv4" in on_bridged.json["message"]


def test_acls_keep_their_orders(net):
    client, _ = net
    for description, rule in (("ssh", "tcp dport 22 accept"), ("web", "tcp dport { 80, 443 } accept")):
        assert post(client, "/network/100/acl", description=description, rule=rule).status_code == 200
    first = post(client, "/network/100/acl", description="drop-bad", rule="ip saddr 10.9.9.9 drop", order="1")
    assert first.status_code == 200, first.json
    out = post(client, "/network/100/acl", description="egress", rule="accept", direction="out", order="7")
    assert out.status_code == 200, out.json

    def listed(**params):
        return [
            (a["description"], a["direction"], a["order"])
            for a in get(client, "/network/100/acl", **params).json
        ]

    assert listed() == [("drop-bad", "in", 1), ("ssh", "in", 2), ("web", "in", 3), ("egress", "out", 1)]
    assert listed(direction="out") == [("egress", "out", 1)]
    assert listed(limit="^s") == [("ssh", "in", 2)]
    assert get(client, "/network/100/acl/ssh").json == [
        {"description": "ssh", "direction": "in", "order": 2, "rule": "tcp dport 22 accept"}
    ]
    moved = post(client, "/network/100/acl/web", rule="tcp dport 80 accept", order="1")
    assert moved.status_code == 200, moved.json
    assert listed(direction="in") == [("web", "in", 1), ("drop-bad", "in", 2), ("ssh", "in", 3)]
    assert client.delete(f"{PREFIX}/network/100/acl/drop-bad").status_code == 200
    assert listed(direction="in") == [("web", "in", 1), ("ssh", "in", 2)]
    duplicate = post(client, "/network/100/acl", description="ssh", rule="accept")
    assert duplicate.status_code == 400 and "has an ACL 'ssh' already" in duplicate.json["message"]
    unsafe = post(client, "/network/100/acl", description="evil", rule="accept; flush ruleset")
    assert unsafe.status_code == 400 and "may not contain ';'" in unsafe.json["message"]
    jump = post(client, "/network/100/acl", description="evil", rule="jump input")
    assert jump.status_code == 400 and "may not use 'jump'" in jump.json["message"]
    assert client.delete(f"{PREFIX}/network/100/acl/nope").status_code == 404


def test_the_configured_rule_checker_is_asked(api_factory):
    client, context = api_factory()
    asked = []

    def checker(rule: str) -> None:
        asked.append(rule)
        if "bogus" in rule:
            raise ValueError("Error: syntax error, unexpected string")

    context.network_rule_checker = checker
    assert post(client, "/network", vni="9", description="n9", nettype="managed").status_code == 200
    refused = post(client, "/network/9/acl", description="x", rule="bogus thing")
    assert refused.status_code == 400 and "unexpected string" in refused.json["message"]
    assert post(client, "/network/9/acl", description="x", rule="accept").status_code == 200
    assert asked == ["bogus thing", "accept"]


def test_nft_parses_every_rule_before_it_is_stored(api_factory):
    client, context = api_factory()
    context.network_rule_checker = nft_rule_checker
    assert post(client, "/network", vni="9", description="n9", nettype="managed").status_code == 200
    refused = post(client, "/network/9/acl", description="x", rule="tcp dport nope drop")
    assert refused.status_code == 400 and "nftables does not accept" in refused.json["message"]
    assert get(client, "/network/9/acl").json == []
    assert post(client, "/network/9/acl", description="x", rule="tcp dport 22 drop").status_code == 200
    assert [acl["rule"] for acl in get(client, "/network/9/acl").json] == ["tcp dport 22 drop"]


def test_removing_a_network_takes_its_children_and_is_refused_while_a_vm_uses_it(net):
    client, context = net
    post(client, "/network/100/lease", macaddress="52:54:00:aa:bb:01", ipaddress="10.100.0.10")
    post(client, "/network/100/acl", description="ssh", rule="tcp dport 22 accept")
    from pvc.state import networks as records

    records.put_lease(context.cluster.store, 100, "52:54:00:aa:bb:02", "10.100.0.101", expiry=1)
    assert len(tree(context, 100)) == 3
    xml = build(DomainSpec(name="user1", memory_mib=64, bridges=["vmbr100"]))
    from pvc.cluster.vm import define

    context.cluster.store.set(paths.node("hv1"), '{"name": "hv1"}')
    context.cluster.cache.wait_until(lambda: context.cluster.cache.node("hv1"), 5)
    define.define(context.cluster, xml, policy=XmlPolicy(), node="hv1")
    busy = client.delete(f"{PREFIX}/network/100")
    assert busy.status_code == 409 and "in use by VM(s) user1" in busy.json["message"]
    assert client.delete(f"{PREFIX}/vm/user1").status_code == 200
    gone = client.delete(f"{PREFIX}/network/100")
    assert gone.status_code == 200, gone.json
    assert context.cluster.store.children(paths.NETWORKS) == []
    assert get(client, "/network").json == []


def test_vm_interfaces_must_join_defined_networks(api):
    client, context = api
    context.cluster.store.set(paths.node("hv1"), '{"name": "hv1"}')
    context.cluster.cache.wait_until(lambda: context.cluster.cache.node("hv1"), 5)
    xml = build(DomainSpec(name="vm1", memory_mib=64, bridges=["vmbr100", "vmbr7"]))
    refused = client.post(f"{PREFIX}/vm", data={"xml": xml, "node": "hv1"})
    assert refused.status_code == 400
    assert "No client network with VNI 7, 100 is defined" in refused.json["message"]
    post(client, "/network", vni="100", description="a", nettype="bridged")
    post(client, "/network", vni="7", description="b", nettype="bridged")
    assert client.post(f"{PREFIX}/vm", data={"xml": xml, "node": "hv1"}).status_code == 200
    # a change may keep its interfaces; a new one needs its network
    changed = xml.replace("vmbr7", "vmbr8")
    modified = client.put(f"{PREFIX}/vm/vm1", data={"xml": changed})
    assert modified.status_code == 400 and "VNI 8 is defined" in modified.json["message"]
    nic = "<interface type='bridge'><source bridge='vmbr9'/><model type='virtio'/></interface>"
    plug = client.post(f"{PREFIX}/vm/vm1/device", data={"xml": nic})
    assert plug.status_code == 400 and "VNI 9 is defined" in plug.json["message"]


def test_status_and_metrics_count_the_listed_networks(net):
    client, _ = net
    post(client, "/network", vni="20", description="v20", nettype="bridged")
    listed = get(client, "/network").json
    assert get(client, "/status").json["networks"] == len(listed) == 2
    samples = metric_samples(client.get(f"{PREFIX}/metrics").get_data(as_text=True))["pvc_networks"]
    by_type = {dict(labels)["type"]: value for labels, value in samples.items()}
    assert by_type == {kind: sum(1 for n in listed if n["type"] == kind) for kind in ("managed", "bridged")}


@pytest.mark.parametrize(
    ("subnet", "gateway", "words"),
    [
        ("10.110.0.0/24", "10.110.0.9", "the cluster's own network"),
        ("10.110.0.0/16", "10.110.9.1", "the cluster's own network"),
        ("169.254.0.0/24", "169.254.0.1", "reserved address space"),
        ("127.0.0.0/24", "127.0.0.1", "reserved address space"),
    ],
)
def test_a_client_network_cannot_take_the_clusters_own_address_space(api_factory, subnet, gateway, words):
    client, context = api_factory()
    context.reserved_networks = (ipaddress.ip_network("10.110.0.0/24"),)
    refused = post(
        client,
        "/network",
        vni="9",
        description="n9",
        nettype="managed",
        ip4_network=subnet,
        ip4_gateway=gateway,
    )
    assert refused.status_code == 400 and words in refused.json["message"]
    assert get(client, "/network").json == []
    assert post(client, "/network", vni="9", description="n9", nettype="managed").status_code == 200
    changed = client.put(f"{PREFIX}/network/9", data={"ip4_network": subnet, "ip4_gateway": gateway})
    assert changed.status_code == 400 and words in changed.json["message"]
    assert get(client, "/network/9").json[0]["ip4"]["network"] in ("", None)
