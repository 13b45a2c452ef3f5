"""The lease hook's protocol with dnsmasq: its arguments and environment, and its init lines."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest

from pvc.node.lease_hook import LeaseEvent, LeaseHookError, handle, lease_line, network_of, parse_event

MAC = "02:00:00:00:01:0a"
NOW = 1_700_000_000.0


def _env(**extra: str) -> dict[str, str]:
    return {"PVC_NETWORK_VNI": "100", "DNSMASQ_INTERFACE": "vmbr100", **extra}


class FakeStore:
    """A LeaseStore in a dict, recording what was asked of it."""

    def __init__(self) -> None:
        self.leases: dict[int, dict[str, LeaseEvent]] = {}

    def put(self, vni: int, event: LeaseEvent) -> None:
        self.leases.setdefault(vni, {})[event.mac] = event

    def remove(self, vni: int, mac: str) -> None:
        self.leases.get(vni, {}).pop(mac, None)

    def all(self, vni: int) -> Sequence[LeaseEvent]:
        return list(self.leases.get(vni, {}).values())


def _run(argv: list[str], env: dict[str, str], store: FakeStore) -> tuple[int, str]:
    out = io.StringIO()
    status = handle(argv, env, store, out, clock=lambda: NOW)
    return status, out.getvalue()


def test_an_add_event_carries_everything_dnsmasq_said() -> None:
    env = _env(DNSMASQ_LEASE_EXPIRES="1700003600", DNSMASQ_CLIENT_ID="01:02:00:00:00:01:0a")
    event = parse_event(["add", MAC.upper(), "10.100.0.120", "Web1"], env)
    assert event == LeaseEvent(
        action="add",
        mac=MAC,
        ip="10.100.0.120",
        hostname="web1",
        expiry=1700003600,
        client_id="01:02:00:00:00:01:0a",
        interface="vmbr100",
        vni=100,
    )


def test_without_a_hostname_or_client_id_those_are_none() -> None:
    event = parse_event(["old", MAC, "10.100.0.120"], _env(DNSMASQ_LEASE_EXPIRES="0"))
    assert (event.hostname, event.client_id, event.expiry) == (None, None, 0)


def test_expiry_from_lease_length_or_time_remaining() -> None:
    assert parse_event(["add", MAC, "10.0.0.2"], _env(DNSMASQ_LEASE_LENGTH="600"), NOW).expiry == NOW + 600
    assert parse_event(["add", MAC, "10.0.0.2"], _env(DNSMASQ_TIME_REMAINING="30"), NOW).expiry == NOW + 30


def test_the_network_comes_from_pvc_or_else_from_the_interface() -> None:
    assert network_of({"PVC_NETWORK_VNI": "7", "DNSMASQ_INTERFACE": "vmbr100"}) == 7
    assert network_of({"DNSMASQ_INTERFACE": "vmbr100"}) == 100
    with pytest.raises(LeaseHookError):
        network_of({"DNSMASQ_INTERFACE": "eth0"})
    with pytest.raises(LeaseHookError):
        network_of({"PVC_NETWORK_VNI": "x"})


def test_a_dhcpv6_event_keys_on_the_mac_dnsmasq_knows() -> None:
    env = _env(DNSMASQ_IAID="1234", DNSMASQ_MAC=MAC, DNSMASQ_LEASE_EXPIRES="1700003600")
    event = parse_event(["add", "00:01:00:01:2a:2b:2c:2d:02:00:00:00:01:0a", "2001:db8::1001", "web1"], env)
    assert (event.mac, event.duid, event.iaid, event.client_id) == (
        MAC,
        "00:01:00:01:2a:2b:2c:2d:02:00:00:00:01:0a",
        "1234",
        None,
    )
    with pytest.raises(LeaseHookError):
        lease_line(event)


@pytest.mark.parametrize(
    "argv, env",
    [
        (["add", MAC], _env()),
        (["bogus", MAC, "10.0.0.2"], _env()),
        (["add", "not-a-mac", "10.0.0.2"], _env()),
        (["add", MAC, "10.0.0.300"], _env()),
        (["add", MAC, "10.0.0.2", "bad name"], _env()),
        (["add", MAC, "10.0.0.2", "a\nb"], _env()),
        (["add", MAC, "10.0.0.2"], _env(DNSMASQ_LEASE_EXPIRES="soon")),
        (["add", MAC, "10.0.0.2"], _env(DNSMASQ_CLIENT_ID="01 02")),
    ],
)
def test_unreadable_calls_are_refused(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(LeaseHookError):
        parse_event(argv, env)


def test_lease_lines_are_dnsmasq_lease_file_lines() -> None:
    event = parse_event(["add", MAC, "10.100.0.120", "web1"], _env(DNSMASQ_LEASE_EXPIRES="1700003600"))
    assert lease_line(event) == f"1700003600 {MAC} 10.100.0.120 web1 *"
    with_id = parse_event(
        ["add", MAC, "10.100.0.120"],
        _env(DNSMASQ_LEASE_EXPIRES="0", DNSMASQ_CLIENT_ID="01:02:00:00:00:01:0a"),
    )
    assert lease_line(with_id) == f"0 {MAC} 10.100.0.120 * 01:02:00:00:00:01:0a"


def test_add_old_del_and_init_against_a_store() -> None:
    store = FakeStore()
    expires = str(int(NOW) + 600)
    assert _run(["add", MAC, "10.100.0.120", "web1"], _env(DNSMASQ_LEASE_EXPIRES=expires), store) == (0, "")
    assert _run(["add", "02:00:00:00:01:0b", "10.100.0.121"], _env(DNSMASQ_LEASE_EXPIRES="0"), store)[0] == 0
    # a lease of another network stays out of this one's init
    assert (
        _run(["add", MAC, "10.7.0.5"], {"PVC_NETWORK_VNI": "7", "DNSMASQ_LEASE_EXPIRES": expires}, store)[0]
        == 0
    )
    status, out = _run(["init"], {"PVC_NETWORK_VNI": "100"}, store)
    assert status == 0
    assert out.splitlines() == [
        f"{expires} {MAC} 10.100.0.120 web1 *",
        "0 02:00:00:00:01:0b 10.100.0.121 * *",
    ]
    assert _run(["del", MAC, "10.100.0.120", "web1"], _env(), store) == (0, "")
    assert [lease.mac for lease in store.all(100)] == ["02:00:00:00:01:0b"]
    assert [lease.ip for lease in store.all(7)] == ["10.7.0.5"]


def test_init_leaves_out_expired_and_ipv6_leases() -> None:
    store = FakeStore()
    store.put(100, parse_event(["add", MAC, "10.100.0.120"], _env(DNSMASQ_LEASE_EXPIRES=str(int(NOW) - 1))))
    v6 = _env(DNSMASQ_LEASE_EXPIRES="0", DNSMASQ_MAC="02:00:00:00:01:0c")
    store.put(100, parse_event(["add", "00:01:00:01:aa:bb", "2001:db8::1001"], v6))
    assert _run(["init"], _env(), store) == (0, "")


def test_a_restored_lease_keeps_its_stored_client_id() -> None:
    store = FakeStore()
    env = _env(DNSMASQ_LEASE_EXPIRES="1700003600", DNSMASQ_CLIENT_ID="01:02:00:00:00:01:0a")
    _run(["add", MAC, "10.100.0.120", "web1"], env, store)
    restored = {"PVC_NETWORK_VNI": "100", "DNSMASQ_LEASE_EXPIRES": "1700003600", "DNSMASQ_DATA_MISSING": "1"}
    _run(["old", MAC, "10.100.0.120", "web1"], restored, store)
    [lease] = store.all(100)
    assert (lease.action, lease.client_id) == ("old", "01:02:00:00:00:01:0a")


def test_other_actions_are_ignored() -> None:
    store = FakeStore()
    for argv in (["tftp", "1024", "10.0.0.2", "/srv/tftp/x"], ["arp-add", MAC, "10.0.0.2"], []):
        assert _run(argv, _env(), store) == (0, "")
    assert store.leases == {}
