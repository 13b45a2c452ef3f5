"""The PowerDNS database (gpgsql schema): PVC's zones read and brought in step in one transaction.

PVC marks the ``domains`` rows it manages with ``account = 'pvc'`` and never touches
any other domain. :func:`sync` reads the managed zones and their records, plans the row
changes with :func:`pvc.net.dns_plan.plan` and applies them in one transaction, under
an advisory lock so two synchronisations never interleave. PowerDNS (caches off) serves
the new rows on its next query.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from pvc.errors import PVCError
from pvc.net.dns_plan import CurrentZone, Plan, Row, plan
from pvc.net.dns_records import DnsZone

#: The ``domains.account`` of every zone PVC manages.
MANAGED_ACCOUNT = "pvc"
#: Key of the transaction-level advisory lock held while synchronising ("PVC-DNS").
SYNC_LOCK = 0x5056_432D_444E_53
#: Seconds a connection attempt may take.
CONNECT_TIMEOUT = 10


class DnsStoreError(PVCError):
    """The PowerDNS database cannot be read or written."""


@dataclass(frozen=True)
class SyncResult:
    """What one synchronisation changed, and how long it took (seconds)."""

    plan: Plan
    seconds: float


def read_zones(connection: psycopg.Connection) -> tuple[list[CurrentZone], set[str]]:
    """PVC's zones with their records, and the names of the domains it does not manage."""
    foreign: set[str] = set()
    managed: dict[int, str] = {}
    for domain_id, name, account in connection.execute("SELECT id, name, account FROM domains"):
        if account == MANAGED_ACCOUNT:
            managed[domain_id] = name
        else:
            foreign.add(name)
    rows: dict[int, list[Row]] = defaultdict(list)
    records = connection.execute(
        "SELECT r.id, r.domain_id, r.name, r.type, r.content, r.ttl, r.disabled"
        " FROM records r JOIN domains d ON d.id = r.domain_id WHERE d.account = %s",
        (MANAGED_ACCOUNT,),
    )
    for row_id, domain_id, name, rtype, content, ttl, disabled in records:
        rows[domain_id].append(Row(row_id, name or "", rtype or "", content or "", ttl or 0, bool(disabled)))
    zones = [CurrentZone(domain_id, name, tuple(rows[domain_id])) for domain_id, name in managed.items()]
    return zones, foreign


def apply_plan(connection: psycopg.Connection, change: Plan, zones: Sequence[CurrentZone]) -> None:
    """Write ``change`` (within the caller's transaction)."""
    if change.drop_zones:
        connection.execute(
            "DELETE FROM domains WHERE id = ANY(%s) AND account = %s",
            (list(change.drop_zones), MANAGED_ACCOUNT),
        )
    ids = {zone.name: zone.id for zone in zones}
    if change.create_zones:
        created = connection.execute(
            "INSERT INTO domains (name, type, account)"
            " SELECT unnest(%s::text[]), 'NATIVE', %s RETURNING id, name",
            (list(change.create_zones), MANAGED_ACCOUNT),
        )
        ids.update({name: domain_id for domain_id, name in created})
    if change.deletes:
        connection.execute("DELETE FROM records WHERE id = ANY(%s)", (list(change.deletes),))
    with connection.cursor() as cursor:
        if change.updates:
            cursor.executemany(
                "UPDATE records SET name = %s, type = %s, content = %s, ttl = %s,"
                " prio = 0, disabled = false, auth = true WHERE id = %s",
                [(r.name, r.type, r.content, r.ttl, row_id) for row_id, r in change.updates],
            )
        if change.inserts:
            copy_sql = "COPY records (domain_id, name, type, content, ttl, prio, disabled, auth) FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                for zone, r in change.inserts:
                    copy.write_row((ids[zone], r.name, r.type, r.content, r.ttl, 0, False, True))


def sync_connection(
    connection: psycopg.Connection, zones: Sequence[DnsZone], *, now: int | None = None
) -> Plan:
    """Bring PVC's zones in the database to ``zones`` in one transaction; the plan applied."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK,))
        current, foreign = read_zones(connection)
        change = plan(zones, current, now=int(time.time()) if now is None else now, foreign=foreign)
        if not change.empty:
            apply_plan(connection, change, current)
    return change


def sync(conninfo: str, zones: Sequence[DnsZone], *, now: int | None = None) -> SyncResult:
    """Connect to the PowerDNS database with ``conninfo`` and synchronise ``zones`` (see
    :func:`sync_connection`). DnsStoreError if the database cannot be reached or written."""
    started = time.monotonic()
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT) as connection:
            change = sync_connection(connection, zones, now=now)
    except psycopg.Error as error:
        raise DnsStoreError(f"cannot synchronise the DNS zones: {error}") from None
    return SyncResult(change, time.monotonic() - started)
