"""The primary's DNS aggregator: PowerDNS on a local PostgreSQL, serving every managed
network's domain at the floating addresses.

The records are derived state: ZooKeeper holds the networks, reservations and leases, so
the database is rebuilt from them whenever a node takes over (no replication needed).
Each pass on the primary syncs the planned difference in one transaction; PowerDNS's
caches are off, so an answer changes with the next query.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from pvc.config import NodeConfig
from pvc.errors import PVCError
from pvc.net import dns_store
from pvc.net.dns_records import Host, NetworkDns, build_zones
from pvc.net.postgres import LocalPostgres
from pvc.net.powerdns import PowerDnsConfig, PowerDnsService
from pvc.state.networks import Lease, Network, Reservation

log = logging.getLogger(__name__)

#: The aggregator's database: its name, and the port of the primary's local PostgreSQL.
DATABASE = "pdns"
DATABASE_PORT = 5433
DNS_PORT = 53
PDNS_SCHEMA = "/usr/share/pdns-backend-pgsql/schema/schema.pgsql.sql"


def network_dns(
    network: Network, reservations: Iterable[Reservation], leases: Iterable[Lease], nameservers: Sequence[str]
) -> NetworkDns:
    """What one managed network publishes (``nameservers``: the aggregator's addresses)."""
    ip4 = ipaddress.IPv4Network(network.ip4_network) if network.ip4_network else None
    ip6 = ipaddress.IPv6Network(network.ip6_network) if network.ip6_network else None
    return NetworkDns(
        network_id=str(network.vni),
        domain=network.domain,
        network=ip4,
        gateway=ipaddress.IPv4Address(network.ip4_gateway) if network.ip4_gateway else None,
        network6=ip6,
        gateway6=ipaddress.IPv6Address(network.ip6_gateway) if network.ip6_gateway else None,
        nameservers=tuple(ipaddress.ip_address(address) for address in nameservers),
        reservations=tuple(
            Host(r.hostname or None, ipaddress.ip_address(r.ip4_address)) for r in reservations
        ),
        leases=tuple(
            Host(lease.hostname or None, ipaddress.ip_address(lease.ip4_address), lease.expiry)
            for lease in leases
        ),
    )


class DnsAggregator:
    """Starts, fills and stops the primary's PostgreSQL and PowerDNS."""

    def __init__(self, config: NodeConfig, directory: Path) -> None:
        self.directory = directory
        networks = config.networks
        floating = [net.floating_address for net in (networks.upstream, networks.cluster)]
        self.addresses = tuple(str(address.ip) for address in floating if address is not None)
        self.database = LocalPostgres(
            directory / "postgres",
            directory / "postgres-socket",
            DATABASE_PORT,
            config.paths.log_dir / "dns-postgres.log",
        )
        self.pdns = PowerDnsService(
            directory / "pdns",
            PowerDnsConfig(
                local_addresses=self.addresses or ("127.0.0.1",),
                db_host=str(directory / "postgres-socket"),
                db_port=DATABASE_PORT,
                socket_dir=str(directory / "pdns-socket"),
                db_name=DATABASE,
            ),
            config.paths.log_dir / "pdns.log",
        )
        self.active = False

    def start(self) -> None:
        """Bring the database and PowerDNS up (the database is made on first use)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.database.start()  # makes the instance on first use; nothing if it runs
        self.database.ensure_database(DATABASE, PDNS_SCHEMA)
        if not self.pdns.running:
            self.pdns.start(die_with_parent=True)
            self.pdns.wait_ready()
        self.active = True

    def sync(self, networks: Sequence[NetworkDns]) -> None:
        """Make the served records those of ``networks``."""
        zones = build_zones(networks)
        for skipped in zones.skipped:
            log.info("DNS: %s", skipped)
        result = dns_store.sync(self.database.conninfo(DATABASE), zones.zones)
        plan = result.plan
        if plan.row_changes or plan.create_zones or plan.drop_zones:
            log.info(
                "DNS: %d zones created, %d dropped, %d records written in %.2f s",
                len(plan.create_zones),
                len(plan.drop_zones),
                plan.row_changes,
                result.seconds,
            )

    def database_running(self) -> bool:
        """Whether this node runs the aggregator's database (perhaps left by a previous daemon;
        PowerDNS dies with its daemon, the database does not)."""
        return self.database.running() is not None

    def stop(self) -> None:
        """Stop PowerDNS, then the database (found by its pid file after a restart)."""
        errors = []
        for name, stop in (("PowerDNS", self.pdns.stop), ("PostgreSQL", self.database.stop)):
            try:
                stop()
            except PVCError as error:
                errors.append(f"{name}: {error}")
        self.active = False
        if errors:
            raise PVCError("; ".join(errors))
