"""The DNS records of the managed client networks, derived from plain inputs (no I/O).

ZooKeeper holds the truth (networks, DHCP leases, static reservations); the aggregator's
database only mirrors it, so a new primary rebuilds it from the same inputs. This module
turns one :class:`NetworkDns` per managed network into the zones PowerDNS serves:

* a forward zone named after the network's domain with ``gateway.<domain>`` (A and/or
  AAAA), one ``ns<N>.<domain>`` A/AAAA plus an apex NS record per nameserver address,
  and one A (AAAA for an IPv6 address) per reservation and per lease hostname;
* IPv4 reverse zones (``in-addr.arpa``) on octet boundaries, with one PTR per address of
  the network that has a name (the gateway's first, then the nameservers', reservations',
  leases'). A network of prefix /8 to /24 gets the blocks of the next octet boundary at
  or below its prefix: a /24 one zone, a /22 four /24 zones, a /16 one /16 zone, a /20
  sixteen /24 zones. A network smaller than a /24 gets none: its reverse names sit in a
  /24 zone it does not own (RFC 2317 delegation is the owner's job). IPv6 reverse zones
  are not built.

Hostnames must be single DNS labels (letters, digits, inner hyphens, at most 63
characters; case is folded). A reservation's hostname beats a lease's; of two leases
with one hostname the later-expiring wins; the losers, bad names, reserved names
(``gateway``, ``ns<N>``) and addresses outside the network are left out and reported as
:class:`Skipped` entries. A lease without a hostname simply has no record.

Record names and contents are fully qualified, lower case, without the final dot: the
form of the PowerDNS database. SOA records are not built here: a zone carries its
:class:`Soa` fields, and the serial is chosen when the zone is compared with what is
served (:mod:`pvc.net.dns_plan`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: One DNS label as a hostname may use it (RFC 1123), lower case.
LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
#: A domain's total length limit, without the final dot.
MAX_NAME = 253
#: Hostnames PVC gives its own records in every forward zone.
GATEWAY_LABEL = "gateway"
NAMESERVER_LABEL = re.compile(r"^ns[0-9]+$")
#: Default TTL of every record, in seconds (short: leases come and go).
DEFAULT_TTL = 60
#: Smallest and largest IPv4 prefix that gets reverse zones (see the module's docstring).
REVERSE_MIN_PREFIX = 8
REVERSE_MAX_PREFIX = 24


@dataclass(frozen=True)
class Host:
    """A name for an address: a static reservation or a DHCP lease.

    ``hostname`` None or empty: no name (typical of a lease). ``expires`` (seconds since
    the epoch, leases only) picks the winner between two leases of one hostname.
    """

    hostname: str | None
    address: IPAddress
    expires: int = 0


@dataclass(frozen=True)
class NetworkDns:
    """What one managed network publishes: its domain, addresses, reservations and leases.

    ``network_id`` names the network in reports (its VNI, say). ``nameservers`` are the
    addresses its zones name as authoritative (the aggregator's and/or the gateway);
    empty means the gateways.
    """

    network_id: str
    domain: str
    network: ipaddress.IPv4Network | None = None
    gateway: ipaddress.IPv4Address | None = None
    network6: ipaddress.IPv6Network | None = None
    gateway6: ipaddress.IPv6Address | None = None
    nameservers: tuple[IPAddress, ...] = ()
    reservations: tuple[Host, ...] = ()
    leases: tuple[Host, ...] = ()


@dataclass(frozen=True, order=True)
class Record:
    """One row of the ``records`` table: a fully qualified lower-case name without the dot."""

    name: str
    type: str
    content: str
    ttl: int = DEFAULT_TTL


@dataclass(frozen=True)
class Soa:
    """A zone's SOA fields but its serial (chosen when the zone is synchronised)."""

    mname: str
    rname: str
    refresh: int = 10800
    retry: int = 1800
    expire: int = 604800
    minimum: int = DEFAULT_TTL
    ttl: int = DEFAULT_TTL

    def content(self, serial: int) -> str:
        """The SOA record's content with ``serial``, as PowerDNS stores it."""
        return f"{self.mname} {self.rname} {serial} {self.refresh} {self.retry} {self.expire} {self.minimum}"


@dataclass(frozen=True)
class DnsZone:
    """A zone as it should be served: its name, SOA fields and every other record."""

    name: str
    soa: Soa
    records: frozenset[Record] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Skipped:
    """Something left out of the zones, and why (one sentence)."""

    network_id: str
    what: str
    reason: str

    def __str__(self) -> str:
        return f"network {self.network_id}: {self.what}: {self.reason}"


@dataclass(frozen=True)
class ZoneSet:
    """The zones of all managed networks, and what was left out of them."""

    zones: tuple[DnsZone, ...]
    skipped: tuple[Skipped, ...]


def normal_domain(domain: str) -> str | None:
    """``domain`` lower case without a final dot, or None if it is not a valid DNS name."""
    name = domain.strip().lower().removesuffix(".") if isinstance(domain, str) else ""
    if not name or len(name) > MAX_NAME:
        return None
    return name if all(LABEL.match(label) for label in name.split(".")) else None


def normal_label(hostname: str) -> str | None:
    """``hostname`` lower case if it is one valid DNS label, else None."""
    label = hostname.lower() if isinstance(hostname, str) else ""
    return label if LABEL.match(label) else None


def reverse_blocks(network: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
    """The octet-aligned blocks whose reverse zones a network gets (none outside /8 to /24)."""
    if not REVERSE_MIN_PREFIX <= network.prefixlen <= REVERSE_MAX_PREFIX:
        return []
    boundary = -(-network.prefixlen // 8) * 8
    return list(network.subnets(new_prefix=boundary))


def reverse_zone_name(block: ipaddress.IPv4Network) -> str:
    """``10.1.2.0/24`` → ``2.1.10.in-addr.arpa``; ``10.1.0.0/16`` → ``1.10.in-addr.arpa``."""
    octets = str(block.network_address).split(".")[: block.prefixlen // 8]
    return ".".join(reversed(octets)) + ".in-addr.arpa"


def _order(address: IPAddress) -> tuple[int, int]:
    """A sort key that orders IPv4 before IPv6 addresses (they do not compare)."""
    return address.version, int(address)


def _record_type(address: IPAddress) -> str:
    return "A" if address.version == 4 else "AAAA"


class _ForwardBuilder:
    """Collects one network's names: PVC's own first, then reservations, then leases."""

    def __init__(self, net: NetworkDns, domain: str, ttl: int) -> None:
        self.net = net
        self.domain = domain
        self.ttl = ttl
        self.records: set[Record] = set()
        self.skipped: list[Skipped] = []
        #: address → hostname label for PTRs, in order of precedence (first one kept)
        self.names: dict[IPAddress, str] = {}

    def skip(self, host: Host, reason: str) -> None:
        what = f"{host.hostname or '(no hostname)'} {host.address}"
        self.skipped.append(Skipped(self.net.network_id, what, reason))

    def add(self, label: str, address: IPAddress) -> None:
        self.records.add(Record(f"{label}.{self.domain}", _record_type(address), str(address), self.ttl))
        self.names.setdefault(address, label)

    def inside(self, address: IPAddress) -> bool:
        network = self.net.network if address.version == 4 else self.net.network6
        return network is not None and address in network

    def hosts(self, hosts: Iterable[Host], kind: str, taken: set[tuple[str, int]]) -> set[tuple[str, int]]:
        """Add ``hosts`` whose names are free; the (label, IP version) pairs they took."""
        chosen: dict[tuple[str, int], Host] = {}
        for host in hosts:
            if not host.hostname or host.hostname == "*":  # dnsmasq's "no name"
                continue
            label = normal_label(host.hostname)
            if label is None:
                self.skip(host, "not a valid DNS label")
            elif label == GATEWAY_LABEL or NAMESERVER_LABEL.match(label):
                self.skip(host, "a name PVC reserves for its own records")
            elif not self.inside(host.address):
                self.skip(host, "address outside the network")
            elif (label, host.address.version) in taken:
                self.skip(host, "hostname taken by a reservation")
            else:
                key = (label, host.address.version)
                other = chosen.get(key)
                if other is None:
                    chosen[key] = host
                    continue
                # leases: the later expiry wins; then (reservations too) the lower address
                winner, loser = sorted((other, host), key=lambda h: (-h.expires, int(h.address)))
                chosen[key] = winner
                self.skip(loser, f"hostname taken by another {kind}")
        for (label, _), host in sorted(chosen.items(), key=lambda item: _order(item[1].address)):
            self.add(label, host.address)
        return set(chosen)


def _nameservers(net: NetworkDns) -> list[IPAddress]:
    if net.nameservers:
        return list(dict.fromkeys(net.nameservers))
    return [gateway for gateway in (net.gateway, net.gateway6) if gateway is not None]


def network_zones(net: NetworkDns, *, ttl: int = DEFAULT_TTL) -> tuple[list[DnsZone], list[Skipped]]:
    """The forward zone and IPv4 reverse zones of one network, and what was left out."""
    domain = normal_domain(net.domain)
    if domain is None:
        return [], [Skipped(net.network_id, f"domain {net.domain!r}", "not a valid DNS name")]
    nameservers = _nameservers(net)
    if not nameservers:
        return [], [Skipped(net.network_id, f"domain {domain}", "no gateway or nameserver address")]
    soa = Soa(mname=f"ns1.{domain}", rname=f"hostmaster.{domain}", minimum=ttl, ttl=ttl)
    ns_records = {
        Record(domain, "NS", f"ns{index}.{domain}", ttl) for index in range(1, len(nameservers) + 1)
    }

    builder = _ForwardBuilder(net, domain, ttl)
    for gateway in (net.gateway, net.gateway6):
        if gateway is not None:
            builder.add(GATEWAY_LABEL, gateway)
    for index, address in enumerate(nameservers, start=1):
        builder.add(f"ns{index}", address)
    taken = builder.hosts(net.reservations, "reservation", set())
    builder.hosts(net.leases, "lease", taken)

    zones = [DnsZone(domain, soa, frozenset(builder.records | ns_records))]
    if net.network is not None:
        for block in reverse_blocks(net.network):
            name = reverse_zone_name(block)
            ptrs = {
                Record(address.reverse_pointer, "PTR", f"{label}.{domain}", ttl)
                for address, label in builder.names.items()
                if address.version == 4 and address in block
            }
            ns_rev = {Record(name, "NS", record.content, ttl) for record in ns_records}
            zones.append(DnsZone(name, soa, frozenset(ptrs | ns_rev)))
    return zones, builder.skipped


def build_zones(networks: Sequence[NetworkDns], *, ttl: int = DEFAULT_TTL) -> ZoneSet:
    """The zones of every network (in the order given; a zone name already built by an
    earlier network is left out and reported), and everything left out of them."""
    zones: dict[str, DnsZone] = {}
    owner: dict[str, str] = {}
    skipped: list[Skipped] = []
    for net in networks:
        built, left_out = network_zones(net, ttl=ttl)
        skipped.extend(left_out)
        for zone in built:
            if zone.name in zones:
                reason = f"zone already built for network {owner[zone.name]}"
                skipped.append(Skipped(net.network_id, f"zone {zone.name}", reason))
                continue
            zones[zone.name] = zone
            owner[zone.name] = net.network_id
    return ZoneSet(tuple(zones.values()), tuple(skipped))
