"""``pvc network``: the requests each command sends and what it prints, against the fake API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Invoke
from tests.cli.fakeapi import serve
from tests.cli.fakeapi_network import FakeNetworkApi, build_network_app
from tests.cli.storage_fixtures import table_rows


@pytest.fixture(name="fake_api")
def fake_api_fixture() -> FakeNetworkApi:
    return FakeNetworkApi()


@pytest.fixture(name="api_port")
def api_port_fixture(fake_api: FakeNetworkApi) -> Iterator[int]:
    with serve(fake_api, build_network_app) as port:
        yield port


def test_add_sends_the_v1_arguments(pvc: Invoke, connected: int, fake_api: FakeNetworkApi) -> None:
    result = pvc(
        "network", "add", "300", "-d", "lab", "-p", "managed", "-n", "lab.example.com",
        "--dns-server", "10.30.0.1", "--dns-server", "10.30.0.2", "-i", "10.30.0.0/24", "-g", "10.30.0.1",
        "-i6", "2001:db8:30::/64", "-g6", "2001:db8:30::1", "--dhcp", "--dhcp-start", "10.30.0.100",
        "--dhcp-end", "10.30.0.200",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Added network 300" in result.stdout
    assert fake_api.calls("POST", "/network")[0].args == {
        "vni": ["300"],
        "description": ["lab"],
        "nettype": ["managed"],
        "mtu": [""],
        "domain": ["lab.example.com"],
        "name_servers": ["10.30.0.1", "10.30.0.2"],
        "ip4_network": ["10.30.0.0/24"],
        "ip4_gateway": ["10.30.0.1"],
        "ip6_network": ["2001:db8:30::/64"],
        "ip6_gateway": ["2001:db8:30::1"],
        "dhcp4": ["true"],
        "dhcp4_start": ["10.30.0.100"],
        "dhcp4_end": ["10.30.0.200"],
    }


def test_add_of_a_bridged_network_sends_only_its_settings(
    pvc: Invoke, connected: int, fake_api: FakeNetworkApi
) -> None:
    assert pvc("network", "add", "30", "-d", "v30", "-p", "bridged").exit_code == 0
    assert fake_api.calls("POST", "/network")[0].args == {
        "vni": ["30"],
        "description": ["v30"],
        "nettype": ["bridged"],
        "mtu": [""],
        "dhcp4": ["false"],
    }
    again = pvc("network", "add", "30", "-d", "v30", "-p", "bridged")
    assert again.exit_code == 1 and "VNI 30 already exists" in again.stderr


def test_modify_sends_only_what_is_given(pvc: Invoke, connected: int, fake_api: FakeNetworkApi) -> None:
    result = pvc("network", "modify", "100", "-m", "1400", "--no-dhcp")
    assert result.exit_code == 0, result.output
    assert fake_api.calls("PUT", "/network/100")[0].args == {"mtu": ["1400"], "dhcp4": ["false"]}
    assert fake_api.networks[100]["mtu"] == 1400


def test_list_formats(pvc: Invoke, connected: int, fake_api: FakeNetworkApi) -> None:
    rows = table_rows(pvc("network", "list").stdout)
    assert [row[:4] for row in rows] == [
        ["100", "web", "managed", "default"],
        ["200", "vlan200", "bridged", "9000"],
    ]
    assert pvc("network", "list", "-f", "raw").stdout.split() == ["100", "200"]
    assert json.loads(pvc("network", "list", "vlan", "-f", "json").stdout) == [fake_api.networks[200]]
    assert fake_api.calls("GET", "/network")[-1].args == {"limit": ["vlan"]}
    assert pvc("network", "list", "nothing").stdout.strip() == "No networks."


def test_info_pretty_and_long(pvc: Invoke, connected: int) -> None:
    pretty = pvc("network", "info", "100").stdout
    assert "DHCPv4 range: 10.100.0.100 - 10.100.0.199" in " ".join(pretty.split()).replace(" :", ":")
    assert "web.example.com" in pretty and "ssh" not in pretty
    long = pvc("network", "info", "100", "-f", "long").stdout
    assert "tcp dport 22 accept" in long and "52:54:00:00:00:02" in long and "2023-11-14 22:13:20" in long
    missing = pvc("network", "info", "999")
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_remove_asks_first(pvc: Invoke, connected: int, fake_api: FakeNetworkApi) -> None:
    declined = pvc("network", "remove", "200", input="n\n")
    assert declined.exit_code == 0 and "Aborted." in declined.stdout
    assert fake_api.calls("DELETE") == []
    assert pvc("network", "remove", "200", "-y").exit_code == 0
    assert 200 not in fake_api.networks


def test_dhcp_commands(pvc: Invoke, connected: int, fake_api: FakeNetworkApi) -> None:
    added = pvc("network", "dhcp", "add", "100", "10.100.0.20", "db1", "52:54:00:00:00:20")
    assert added.exit_code == 0, added.output
    assert fake_api.calls("POST", "/network/100/lease")[0].args == {
        "macaddress": ["52:54:00:00:00:20"],
        "ipaddress": ["10.100.0.20"],
        "hostname": ["db1"],
    }
    rows = table_rows(pvc("network", "dhcp", "list", "100").stdout)
    assert [row[0] for row in rows] == ["vm1", "vm2", "db1"]
    assert rows[0][3] == "static"
    assert pvc("network", "dhcp", "list", "100", "-s", "-f", "raw").stdout.split() == [
        "10.100.0.10",
        "10.100.0.20",
    ]
    assert fake_api.calls("GET", "/network/100/lease")[-1].args == {"static": ["true"]}
    assert pvc("network", "dhcp", "remove", "100", "52:54:00:00:00:20", "-y").exit_code == 0
    assert fake_api.calls("DELETE", "/network/100/lease/52:54:00:00:00:20")
    gone = pvc("network", "dhcp", "remove", "100", "52:54:00:00:00:20", "-y")
    assert gone.exit_code == 1 and "No DHCP reservation" in gone.stderr


def test_acl_commands(pvc: Invoke, connected: int, fake_api: FakeNetworkApi) -> None:
    added = pvc("network", "acl", "add", "100", "-d", "web", "-r", "tcp dport 80 accept", "-o", "1")
    assert added.exit_code == 0, added.output
    assert fake_api.calls("POST", "/network/100/acl")[0].args == {
        "description": ["web"],
        "direction": ["in"],
        "rule": ["tcp dport 80 accept"],
        "order": ["1"],
    }
    assert (
        pvc("network", "acl", "add", "100", "--out", "-d", "dns", "-r", "udp dport 53 accept").exit_code == 0
    )
    assert fake_api.calls("POST", "/network/100/acl")[1].args["direction"] == ["out"]
    rows = table_rows(pvc("network", "acl", "list", "100").stdout)
    assert [row[:3] for row in rows] == [
        ["in", "1", "web"],
        ["in", "2", "ssh"],
        ["out", "1", "egress"],
        ["out", "2", "dns"],
    ]
    assert pvc("network", "acl", "list", "100", "--out", "-f", "raw").stdout.split() == ["egress", "dns"]
    assert fake_api.calls("GET", "/network/100/acl")[-1].args == {"direction": ["out"]}
    assert pvc("network", "acl", "remove", "100", "web", "-y").exit_code == 0
    assert fake_api.calls("DELETE", "/network/100/acl/web")
    assert [a["order"] for a in fake_api.acls[100] if a["direction"] == "in"] == [1]


def test_status_counts_the_fakes_networks(pvc: Invoke, connected: int, fake_api: FakeNetworkApi) -> None:
    status = json.loads(pvc("cluster", "status", "-f", "json").stdout)
    assert status["networks"] == len(fake_api.networks) == 2
