"""The DNS aggregator for real: PostgreSQL 15 and PowerDNS 4.7 on 127.0.0.1, high ports, dnspython.

Every process is started by the test and stopped by PID at the end; nothing listens
anywhere but on loopback, and PowerDNS's configuration never lets it ask the outside world.
Timings are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import pwd
import shutil
import time
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Network, ip_address
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

from pvc.net import dns_store
from pvc.net.dns_plan import serial_of
from pvc.net.dns_records import Host, NetworkDns, build_zones
from pvc.net.postgres import PG_BINDIR, LocalPostgres
from pvc.net.powerdns import PowerDnsConfig, PowerDnsService, query
from tests.helpers import free_udp_ports, reachable_dir

SCHEMA = Path("/usr/share/pdns-backend-pgsql/schema/schema.pgsql.sql")
LOOPBACK = "127.0.0.1"


def _can_run() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    tools = (PG_BINDIR / "initdb", PG_BINDIR / "pg_ctl", SCHEMA)
    return os.geteuid() == 0 and all(p.exists() for p in tools) and shutil.which("pdns_server") is not None


pytestmark = pytest.mark.skipif(
    not _can_run(), reason="needs root, PostgreSQL 15, pdns_server and its gpgsql schema"
)


class Aggregator:
    """PostgreSQL + PowerDNS in one scratch directory, as the primary would run them."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pg_port, self.dns_port = free_udp_ports(2, LOOPBACK)
        (base / "pg").mkdir(mode=0o755, exist_ok=True)
        self.pg = LocalPostgres(
            base / "pg" / "data", base / "pg" / "run", self.pg_port, base / "pg" / "pg.log", durable=False
        )
        config = PowerDnsConfig(
            local_addresses=(LOOPBACK,),
            db_host=LOOPBACK,
            db_port=self.pg_port,
            socket_dir=str(base / "pdns" / "run"),
            local_port=self.dns_port,
        )
        self.pdns = PowerDnsService(base / "pdns", config, base / "pdns" / "pdns.log")

    def start_database(self) -> float:
        started = time.monotonic()
        self.pg.start()
        self.pg.ensure_database("pdns", SCHEMA)
        return time.monotonic() - started

    def start_dns(self, zone: str | None = None) -> float:
        started = time.monotonic()
        self.pdns.start(die_with_parent=True)
        self.pdns.wait_ready(zone)
        return time.monotonic() - started

    def sync(self, networks: Sequence[NetworkDns], now: int | None = None) -> dns_store.SyncResult:
        zone_set = build_zones(networks)
        return dns_store.sync(self.pg.conninfo("pdns"), zone_set.zones, now=now)

    def ask(self, name: str, rdtype: str) -> dns.message.Message:
        return query(LOOPBACK, self.dns_port, name, rdtype, timeout=2.0)

    def answer(self, name: str, rdtype: str) -> list[str]:
        reply = self.ask(name, rdtype)
        assert reply.rcode() == dns.rcode.NOERROR, f"{name} {rdtype}: {dns.rcode.to_text(reply.rcode())}"
        assert reply.flags & dns.flags.AA
        return sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)

    def serial(self, zone: str) -> int:
        return serial_of(self.answer(zone, "SOA")[0])

    def stop(self) -> None:
        self.pdns.stop()
        self.pg.stop()


@pytest.fixture
def aggregator() -> Iterator[Aggregator]:
    with reachable_dir("pvc-dns-") as base:  # reachable by the postgres account
        stack = Aggregator(base)
        try:
            yield stack
        finally:
            stack.stop()


def _web(**leases: str) -> NetworkDns:
    return NetworkDns(
        network_id="100",
        domain="web.lab.test",
        network=IPv4Network("10.100.0.0/24"),
        gateway=ip_address("10.100.0.1"),
        reservations=(Host("front", ip_address("10.100.0.10")),),
        leases=tuple(Host(name, ip_address(address), expires=100) for name, address in leases.items()),
    )


def _db() -> NetworkDns:
    return NetworkDns(
        network_id="200",
        domain="db.lab.test",
        network=IPv4Network("10.200.0.0/23"),
        gateway=ip_address("10.200.0.1"),
        reservations=(Host("pg1", ip_address("10.200.1.11")),),
        leases=(Host("bad_name", ip_address("10.200.0.99")),),
    )


def test_synced_zones_are_served_forward_reverse_and_soa(aggregator: Aggregator) -> None:
    took = aggregator.start_database()
    result = aggregator.sync([_web(vm1="10.100.0.101"), _db()])
    first_answer = aggregator.start_dns("web.lab.test")
    print(f"\nPostgreSQL initdb+start+schema {took:.2f} s; pdns first answer {first_answer:.2f} s")
    assert set(result.plan.create_zones) == {
        "web.lab.test",
        "0.100.10.in-addr.arpa",
        "db.lab.test",
        "0.200.10.in-addr.arpa",
        "1.200.10.in-addr.arpa",
    }
    assert aggregator.answer("vm1.web.lab.test", "A") == ["10.100.0.101"]
    assert aggregator.answer("front.web.lab.test", "A") == ["10.100.0.10"]
    assert aggregator.answer("gateway.web.lab.test", "A") == ["10.100.0.1"]
    assert aggregator.answer("pg1.db.lab.test", "A") == ["10.200.1.11"]
    assert aggregator.answer("101.0.100.10.in-addr.arpa", "PTR") == ["vm1.web.lab.test."]
    assert aggregator.answer("11.1.200.10.in-addr.arpa", "PTR") == ["pg1.db.lab.test."]
    assert aggregator.answer("web.lab.test", "NS") == ["ns1.web.lab.test."]
    soa = aggregator.answer("web.lab.test", "SOA")[0].split()
    assert (
        soa[:2] == ["ns1.web.lab.test.", "hostmaster.web.lab.test."] and int(soa[2]) >= int(time.time()) - 60
    )
    missing = aggregator.ask("nobody.web.lab.test", "A")  # in a zone we serve: authoritative NXDOMAIN
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.flags & dns.flags.AA
    assert aggregator.ask("bad_name.db.lab.test", "A").rcode() == dns.rcode.NXDOMAIN
    assert aggregator.ask("www.example.com", "A").rcode() == dns.rcode.REFUSED  # no recursion, no forwarding


def test_lease_changes_are_served_on_the_next_query(aggregator: Aggregator) -> None:
    aggregator.start_database()
    aggregator.sync([_web(vm1="10.100.0.101"), _db()], now=1_000_000)
    aggregator.start_dns("web.lab.test")
    before = aggregator.serial("web.lab.test")

    moved = aggregator.sync([_web(vm1="10.100.0.150"), _db()], now=1_000_000)
    assert moved.plan.row_changes == 4  # A, PTR, two SOAs: nothing rewritten
    assert aggregator.answer("vm1.web.lab.test", "A") == ["10.100.0.150"]
    assert aggregator.answer("150.0.100.10.in-addr.arpa", "PTR") == ["vm1.web.lab.test."]
    assert aggregator.ask("101.0.100.10.in-addr.arpa", "PTR").rcode() == dns.rcode.NXDOMAIN
    assert aggregator.serial("web.lab.test") == before + 1
    assert aggregator.serial("db.lab.test") == before  # untouched zone keeps its serial

    added = aggregator.sync([_web(vm1="10.100.0.150", vm2="10.100.0.102"), _db()], now=1_000_000)
    assert len(added.plan.inserts) == 2
    assert aggregator.answer("vm2.web.lab.test", "A") == ["10.100.0.102"]

    aggregator.sync([_web(vm2="10.100.0.102"), _db()])
    assert aggregator.ask("vm1.web.lab.test", "A").rcode() == dns.rcode.NXDOMAIN
    assert aggregator.serial("web.lab.test") >= int(time.time()) - 60  # back on the clock


def test_removed_network_is_no_longer_served(aggregator: Aggregator) -> None:
    aggregator.start_database()
    aggregator.sync([_web(vm1="10.100.0.101"), _db()])
    aggregator.start_dns("db.lab.test")
    result = aggregator.sync([_web(vm1="10.100.0.101")])
    assert len(result.plan.drop_zones) == 3
    for name, rdtype in (
        ("pg1.db.lab.test", "A"),
        ("db.lab.test", "SOA"),
        ("11.1.200.10.in-addr.arpa", "PTR"),
    ):
        assert aggregator.ask(name, rdtype).rcode() == dns.rcode.REFUSED  # as for any zone it does not have
    assert aggregator.answer("vm1.web.lab.test", "A") == ["10.100.0.101"]


def test_domains_pvc_does_not_manage_are_left_alone(aggregator: Aggregator) -> None:
    aggregator.start_database()
    with aggregator.pg.connect("pdns") as connection:
        domain_id = connection.execute(
            "INSERT INTO domains (name, type) VALUES ('db.lab.test', 'NATIVE') RETURNING id"
        ).fetchone()[0]
        connection.execute(
            "INSERT INTO records (domain_id, name, type, content, ttl) VALUES"
            " (%s, 'db.lab.test', 'SOA', 'ns.other. admin.other. 1 1 1 1 1', 60),"
            " (%s, 'kept.db.lab.test', 'A', '192.0.2.1', 60)",
            (domain_id, domain_id),
        )
    result = aggregator.sync([_web(vm1="10.100.0.101"), _db()])
    assert result.plan.conflicts == ("db.lab.test",)
    aggregator.sync([])
    aggregator.start_dns("db.lab.test")
    assert aggregator.answer("kept.db.lab.test", "A") == ["192.0.2.1"]
    assert aggregator.ask("web.lab.test", "SOA").rcode() == dns.rcode.REFUSED


def test_restarts_and_a_fresh_database_give_the_same_answers(aggregator: Aggregator) -> None:
    networks = [_web(vm1="10.100.0.101"), _db()]
    aggregator.start_database()
    aggregator.sync(networks)
    aggregator.start_dns("web.lab.test")
    questions = [("vm1.web.lab.test", "A"), ("101.0.100.10.in-addr.arpa", "PTR"), ("pg1.db.lab.test", "A")]
    expected = {question: aggregator.answer(*question) for question in questions}
    serial = aggregator.serial("web.lab.test")

    # both daemons restarted on the same data: nothing to change
    aggregator.stop()
    assert not aggregator.pdns.running and aggregator.pg.running() is None
    aggregator.start_database()
    assert aggregator.sync(networks).plan.empty
    aggregator.start_dns("web.lab.test")
    assert {question: aggregator.answer(*question) for question in questions} == expected

    # a takeover on another coordinator: a new database, rebuilt from the same inputs
    aggregator.stop()
    shutil.rmtree(aggregator.base / "pg" / "data")
    took = aggregator.start_database()
    rebuilt = aggregator.sync(networks, now=serial + 3600)
    first_answer = aggregator.start_dns("web.lab.test")
    print(
        f"\nrebuild: PostgreSQL initdb+start+schema {took:.2f} s,"
        f" sync {rebuilt.seconds:.3f} s, pdns {first_answer:.2f} s"
    )
    assert {question: aggregator.answer(*question) for question in questions} == expected
    assert aggregator.serial("web.lab.test") > serial


def test_powerdns_reconnects_after_a_database_restart(aggregator: Aggregator) -> None:
    aggregator.start_database()
    aggregator.sync([_web(vm1="10.100.0.101")])
    aggregator.start_dns("web.lab.test")
    aggregator.pg.stop()
    aggregator.start_database()
    started = time.monotonic()
    while True:
        try:
            if aggregator.ask("vm1.web.lab.test", "A").rcode() == dns.rcode.NOERROR:
                break
        except dns.exception.Timeout:
            pass
        assert time.monotonic() - started < 10, "pdns did not answer again after PostgreSQL's restart"
        time.sleep(0.05)
    print(f"\npdns answered again {time.monotonic() - started:.2f} s after PostgreSQL came back")
    assert aggregator.answer("vm1.web.lab.test", "A") == ["10.100.0.101"]


def _many(networks: int, hosts: int, moved: int | None = None) -> list[NetworkDns]:
    out = []
    for index in range(networks):
        prefix = f"10.{1 + index // 200}.{index % 200}"
        leases = tuple(
            Host(
                f"vm{n}", ip_address(f"{prefix}.{(200 if index == moved and n == 0 else 100) + n}"), expires=1
            )
            for n in range(hosts)
        )
        out.append(
            NetworkDns(
                network_id=str(1000 + index),
                domain=f"net{index}.scale.test",
                network=IPv4Network(f"{prefix}.0/24"),
                gateway=ip_address(f"{prefix}.1"),
                leases=leases,
            )
        )
    return out


def test_sync_of_200_zones_with_50_hosts_each(aggregator: Aggregator) -> None:
    aggregator.start_database()
    networks = _many(200, 50)
    zones = build_zones(networks).zones
    first = aggregator.sync(networks)
    rows = first.plan.row_changes
    again = aggregator.sync(networks)
    moved = aggregator.sync(_many(200, 50, moved=123))
    aggregator.start_dns("net199.scale.test")
    print(
        f"\n{len(networks)} networks, {len(zones)} zones, {rows} rows: first sync {first.seconds:.2f} s,"
        f" unchanged {again.seconds:.2f} s, one lease moved {moved.seconds:.2f} s"
    )
    assert len(zones) == 400 and rows == sum(len(zone.records) + 1 for zone in zones)
    assert again.plan.empty
    assert moved.plan.row_changes == 4
    assert aggregator.answer("vm0.net123.scale.test", "A") == ["10.1.123.200"]
    assert aggregator.answer("149.199.1.10.in-addr.arpa", "PTR") == ["vm49.net199.scale.test."]
