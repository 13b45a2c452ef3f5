"""The DNS planner: minimal row changes between built zones and database rows, and SOA serials."""

from __future__ import annotations

import dataclasses
import itertools
from ipaddress import IPv4Network, ip_address

import pytest

from pvc.net.dns_plan import CurrentZone, Plan, Row, diff_records, next_serial, plan, serial_of
from pvc.net.dns_records import DnsZone, Host, NetworkDns, Record, Soa, build_zones

NOW = 1_800_000_000
FORWARD = "prod.example"
REVERSE = "0.100.10.in-addr.arpa"


LEASE = Host("vm5", ip_address("10.100.0.105"))
RESERVATION = Host("web1", ip_address("10.100.0.10"))


def _zones(
    leases: tuple[Host, ...] = (LEASE,), reservations: tuple[Host, ...] = (RESERVATION,)
) -> list[DnsZone]:
    net = NetworkDns(
        network_id="100",
        domain=FORWARD,
        network=IPv4Network("10.100.0.0/24"),
        gateway=ip_address("10.100.0.1"),
        reservations=tuple(reservations),
        leases=tuple(leases),
    )
    return list(build_zones([net]).zones)


class FakeDatabase:
    """The two pdns tables as lists, changed by applying plans (the real one is tested in integration)."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.domains: dict[int, str] = {}
        self.records: dict[int, tuple[str, Row]] = {}

    def current(self) -> list[CurrentZone]:
        zones = []
        for domain_id, name in self.domains.items():
            rows = tuple(row for zone, row in self.records.values() if zone == name)
            zones.append(CurrentZone(domain_id, name, rows))
        return zones

    def apply(self, change: Plan) -> None:
        for domain_id in change.drop_zones:
            name = self.domains.pop(domain_id)
            self.records = {key: value for key, value in self.records.items() if value[0] != name}
        for name in change.create_zones:
            self.domains[next(self.ids)] = name
        for row_id in change.deletes:
            del self.records[row_id]
        for row_id, record in change.updates:
            zone = self.records[row_id][0]
            self.records[row_id] = (zone, Row(row_id, record.name, record.type, record.content, record.ttl))
        for zone, record in change.inserts:
            row_id = next(self.ids)
            self.records[row_id] = (zone, Row(row_id, record.name, record.type, record.content, record.ttl))

    def served(self) -> dict[str, set[Record]]:
        out: dict[str, set[Record]] = {name: set() for name in self.domains.values()}
        for zone, row in self.records.values():
            out[zone].add(row.record())
        return out

    def serial(self, zone: str) -> int:
        return next(serial_of(r.content) for z, r in self.records.values() if z == zone and r.type == "SOA")


def _sync(db: FakeDatabase, zones: list[DnsZone], now: int = NOW) -> Plan:
    change = plan(zones, db.current(), now=now)
    db.apply(change)
    served = db.served()
    for zone in zones:  # whatever the plan did, the result is exactly the built zone plus its SOA
        assert {r for r in served[zone.name] if r.type != "SOA"} == set(zone.records)
    assert set(served) == {zone.name for zone in zones}
    return change


def test_new_zones_are_created_with_all_records_and_a_serial_from_the_clock() -> None:
    db = FakeDatabase()
    zones = _zones()
    change = _sync(db, zones)
    assert set(change.create_zones) == {FORWARD, REVERSE}
    assert len(change.inserts) == sum(len(zone.records) + 1 for zone in zones)
    assert change.serials == {FORWARD: NOW, REVERSE: NOW}
    assert db.serial(FORWARD) == NOW


def test_same_inputs_again_change_nothing_and_keep_the_serial() -> None:
    db = FakeDatabase()
    _sync(db, _zones())
    again = _sync(db, _zones(), now=NOW + 100)
    assert again.empty and again.serials == {}
    assert db.serial(FORWARD) == NOW


def test_added_lease_is_two_inserts_and_two_soa_updates() -> None:
    db = FakeDatabase()
    _sync(db, _zones())
    leases = (Host("vm5", ip_address("10.100.0.105")), Host("vm6", ip_address("10.100.0.106")))
    change = _sync(db, _zones(leases=leases), now=NOW + 10)
    assert sorted((r.name, r.type) for _, r in change.inserts) == [
        ("106.0.100.10.in-addr.arpa", "PTR"),
        ("vm6.prod.example", "A"),
    ]
    assert sorted(r.type for _, r in change.updates) == ["SOA", "SOA"] and change.deletes == ()
    assert change.serials == {FORWARD: NOW + 10, REVERSE: NOW + 10}


def test_moved_lease_updates_its_rows_in_place() -> None:
    db = FakeDatabase()
    _sync(db, _zones())
    change = _sync(db, _zones(leases=(Host("vm5", ip_address("10.100.0.177")),)), now=NOW + 10)
    assert change.inserts == () and change.deletes == ()
    assert sorted((r.type, r.name, r.content) for _, r in change.updates if r.type != "SOA") == [
        ("A", "vm5.prod.example", "10.100.0.177"),
        ("PTR", "177.0.100.10.in-addr.arpa", "vm5.prod.example"),
    ]
    assert change.row_changes == 4  # A, PTR and the two SOAs


def test_removed_lease_deletes_its_two_rows() -> None:
    db = FakeDatabase()
    _sync(db, _zones())
    change = _sync(db, _zones(leases=()), now=NOW + 10)
    assert change.inserts == () and len(change.deletes) == 2
    assert all(r.type == "SOA" for _, r in change.updates)


def test_reservation_taking_a_leased_name_replaces_the_lease_records() -> None:
    db = FakeDatabase()
    _sync(db, _zones())
    reservations = (Host("web1", ip_address("10.100.0.10")), Host("vm5", ip_address("10.100.0.50")))
    _sync(db, _zones(reservations=reservations), now=NOW + 1)
    served = db.served()
    assert Record("vm5.prod.example", "A", "10.100.0.50") in served[FORWARD]
    assert not any(r.content == "10.100.0.105" for r in served[FORWARD])


def test_serial_increases_even_when_changes_outrun_the_clock() -> None:
    db = FakeDatabase()
    _sync(db, _zones())
    serials = []
    for index in range(3):  # three changes within the same second
        _sync(db, _zones(leases=(Host("vm5", ip_address(f"10.100.0.{110 + index}")),)), now=NOW)
        serials.append(db.serial(FORWARD))
    assert serials == [NOW + 1, NOW + 2, NOW + 3]


def test_serial_follows_the_clock_after_a_rebuild_from_scratch() -> None:
    old = FakeDatabase()
    _sync(old, _zones())
    fresh = FakeDatabase()  # a takeover: a new database built from the same inputs, later
    _sync(fresh, _zones(), now=NOW + 3600)
    assert fresh.serial(FORWARD) > old.serial(FORWARD)


def test_changed_soa_fields_alone_bump_the_serial() -> None:
    db = FakeDatabase()
    zones = _zones()
    _sync(db, zones)
    longer = [dataclasses.replace(zone, soa=dataclasses.replace(zone.soa, refresh=7200)) for zone in zones]
    change = _sync(db, longer, now=NOW + 5)
    assert change.serials == {FORWARD: NOW + 5, REVERSE: NOW + 5} and change.row_changes == 2


def test_removed_network_drops_its_zones() -> None:
    db = FakeDatabase()
    _sync(db, _zones())
    change = _sync(db, [], now=NOW + 1)
    assert len(change.drop_zones) == 2 and change.row_changes == 0
    assert db.domains == {}


def test_extra_soa_and_duplicate_and_disabled_rows_are_repaired() -> None:
    soa = Soa("ns1.x.test", "hostmaster.x.test")
    zone = DnsZone(
        "x.test", soa, frozenset({Record("a.x.test", "A", "10.0.0.1"), Record("b.x.test", "A", "10.0.0.2")})
    )
    rows = (
        Row(1, "x.test", "SOA", soa.content(NOW), 60),
        Row(2, "x.test", "SOA", soa.content(NOW - 5), 60),
        Row(3, "a.x.test", "A", "10.0.0.1", 60),
        Row(4, "a.x.test", "A", "10.0.0.1", 60),
        Row(5, "b.x.test", "A", "10.0.0.2", 60, disabled=True),
    )
    change = plan([zone], [CurrentZone(9, "x.test", rows)], now=NOW)
    assert set(change.deletes) == {2, 4}
    assert sorted(row_id for row_id, _ in change.updates) == [1, 5]  # SOA bumped, row 5 enabled
    assert change.serials == {"x.test": NOW + 1}


def test_foreign_domain_of_the_same_name_is_left_alone() -> None:
    change = plan(_zones(), [], now=NOW, foreign={FORWARD})
    assert change.conflicts == (FORWARD,)
    assert change.create_zones == (REVERSE,)
    assert all(zone == REVERSE for zone, _ in change.inserts)


def test_diff_reuses_rows_by_name_and_type_then_by_type() -> None:
    rows = [
        Row(1, "a.t", "A", "10.0.0.1", 60),
        Row(2, "b.t", "A", "10.0.0.2", 60),
        Row(3, "c.t", "AAAA", "::1", 60),
    ]
    desired = {Record("a.t", "A", "10.0.0.9"), Record("z.t", "A", "10.0.0.2")}
    inserts, updates, deletes = diff_records(desired, rows)
    assert inserts == [] and deletes == [3]
    assert sorted(updates) == [(1, Record("a.t", "A", "10.0.0.9")), (2, Record("z.t", "A", "10.0.0.2"))]


def test_serial_helpers() -> None:
    assert serial_of("ns1.x hostmaster.x 42 1 2 3 4") == 42
    assert serial_of("garbage") == 0
    assert next_serial(5, NOW) == NOW
    assert next_serial(NOW + 7, NOW) == NOW + 8
    assert next_serial(2**32 - 1, NOW) == 2**32 - 1


def test_zones_named_twice_or_with_their_own_soa_are_refused() -> None:
    zones = _zones()
    with pytest.raises(ValueError, match="named twice"):
        plan([*zones, zones[0]], [], now=NOW)
    soa_record = Record(FORWARD, "SOA", zones[0].soa.content(1))
    with_soa = dataclasses.replace(zones[0], records=zones[0].records | {soa_record})
    with pytest.raises(ValueError, match="SOA"):
        plan([with_soa], [], now=NOW)
