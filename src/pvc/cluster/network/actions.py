"""Checked writes of client networks and their DHCP reservations.

Each request reads what it checks fresh from ZooKeeper, validates (see :mod:`.validation`),
and writes by compare-and-set (see :mod:`pvc.state.networks`); when another writer got there
first it reads and checks again. It returns once the cache shows the change. ACLs are in
:mod:`.acls`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from pvc.cluster.errors import ClusterError, Conflict, NotFoundError
from pvc.cluster.network import validation
from pvc.cluster.network.queries import resolve
from pvc.cluster.network.validation import Subnet
from pvc.cluster.session import Cluster
from pvc.domain_xml.bridges import vni_of_bridge
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import parse
from pvc.state import networks as records
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.errors import ConflictError
from pvc.state.networks import Network, Reservation, StoreReader
from pvc.state.store import Commit

#: How often a checked write is tried again after losing a race.
ATTEMPTS = 10


def checked_write(cluster: Cluster, write: Callable[[StoreReader], Commit], what: str) -> None:
    """Run ``write`` (checks on fresh reads, then a compare-and-set) until it is not beaten to
    it by another writer, then wait until the cache shows the change."""
    for _ in range(ATTEMPTS):
        try:
            commit = write(StoreReader(cluster.store))
        except ConflictError:
            continue
        cluster.settle(commit)
        return
    raise ConflictError(f"{what}: it kept changing meanwhile; try again")


def _text(value: str | None) -> str:
    return (value or "").strip()


def add_network(
    cluster: Cluster,
    vni: int | str,
    description: str,
    nettype: str,
    *,
    mtu: int | str | None = None,
    domain: str | None = None,
    name_servers: Iterable[str] | None = None,
    ip4_network: str | None = None,
    ip4_gateway: str | None = None,
    dhcp4: bool = False,
    dhcp4_start: str | None = None,
    dhcp4_end: str | None = None,
    ip6_network: str | None = None,
    ip6_gateway: str | None = None,
    reserved: Sequence[Subnet] = (),
) -> str:
    """Add a client network (``nettype`` managed or bridged); see :mod:`.validation` for the
    rules. ``reserved``: subnets it must stay clear of (the cluster's own networks)."""
    wanted = Network(
        vni=validation.parse_vni(vni),
        type=nettype,
        description=validation.check_description(description),
        mtu=validation.parse_mtu(mtu),
        domain=_text(domain),
        name_servers=validation.parse_name_servers(name_servers),
        ip4_network=_text(ip4_network),
        ip4_gateway=_text(ip4_gateway),
        dhcp4=bool(dhcp4),
        dhcp4_start=_text(dhcp4_start),
        dhcp4_end=_text(dhcp4_end),
        ip6_network=_text(ip6_network),
        ip6_gateway=_text(ip6_gateway),
    )

    def write(reader: StoreReader) -> Commit:
        root_version = reader.version(paths.NETWORKS)  # before the reads it vouches for
        network = validation.check_network(wanted, records.read_networks(reader), reserved)
        return records.create_network(cluster.store, network, root_version)

    checked_write(cluster, write, f"Network {wanted.vni}")
    return f"Added network {wanted.vni} ({wanted.description}, {nettype})"


#: What a modify may change; None leaves a field as it is, "" clears it.
MODIFIABLE = ("description", "domain", "ip4_network", "ip4_gateway", "dhcp4_start", "dhcp4_end")
MODIFIABLE_6 = ("ip6_network", "ip6_gateway")


def modify_network(
    cluster: Cluster,
    net: int | str,
    *,
    mtu: int | str | None = None,
    name_servers: Iterable[str] | None = None,
    dhcp4: bool | None = None,
    reserved: Sequence[Subnet] = (),
    **changes: str | None,
) -> str:
    """Change a network: each argument given replaces the field (an empty text clears it; an
    empty ``mtu`` returns to the default). Turning DHCPv4 off drops the range unless a new
    one is given (and then refuses it). Existing reservations must fit the result, and its
    subnets must stay clear of ``reserved``."""
    unknown = set(changes) - set(MODIFIABLE) - set(MODIFIABLE_6)
    if unknown:
        raise ClusterError(f"Cannot change {', '.join(sorted(unknown))} of a network")
    vni = resolve(cluster.cache, net).vni

    def write(reader: StoreReader) -> Commit:
        versions = records.read_versions(reader, vni)  # before the reads they vouch for
        current = records.read_network(reader, vni)
        if current is None:
            raise NotFoundError(f"Network '{net}' not found")
        fields: dict = {key: _text(value) for key, value in changes.items() if value is not None}
        if mtu is not None:
            fields["mtu"] = validation.parse_mtu(mtu)
        if name_servers is not None:
            fields["name_servers"] = validation.parse_name_servers(name_servers)
        if dhcp4 is not None:
            fields["dhcp4"] = dhcp4
            if not dhcp4:
                fields.setdefault("dhcp4_start", "")
                fields.setdefault("dhcp4_end", "")
        if "description" in fields:
            validation.check_description(fields["description"])
        others = [n for n in records.read_networks(reader) if n.vni != vni]
        network = validation.check_network(replace(current, **fields), others, reserved)
        reservations = records.read_reservations(reader, vni)
        if reservations and not network.dhcp4:
            raise ClusterError(
                f"Network {vni} has {len(reservations)} DHCP reservation(s); "
                "remove them before turning DHCPv4 off"
            )
        for reservation in reservations:
            try:
                validation.check_reservation_address(network, reservation.ip4_address)
            except ClusterError as error:
                raise ClusterError(
                    f"The reservation of {reservation.mac} would not fit the changed network: {error}"
                ) from None
        return records.replace_network(cluster.store, network, versions)

    checked_write(cluster, write, f"Network {vni}")
    return f"Modified network {vni}"


def vms_on_network(cache: ClusterCache, vni: int) -> list[str]:
    """Names of the VMs with an interface on the bridge of network ``vni``."""
    users = []
    for record in cache.vms():
        try:
            _, summary = parse(record.xml)
        except DomainXMLError:
            continue
        if any(vni_of_bridge(nic.source) == vni for nic in summary.nics):
            users.append(record.meta.name)
    return sorted(users)


def remove_network(cluster: Cluster, net: int | str) -> str:
    """Remove a network with its reservations, leases and ACLs; Conflict (409) naming the VMs
    that still have an interface on it."""
    network = resolve(cluster.cache, net)
    users = vms_on_network(cluster.cache, network.vni)
    if users:
        raise Conflict(
            f"Network {network.vni} is in use by VM(s) {', '.join(users)}; "
            "remove their interfaces on it (pvc vm network remove) first"
        )

    def write(reader: StoreReader) -> Commit:
        versions = records.read_versions(reader, network.vni)
        if records.read_network(reader, network.vni) is None:
            raise NotFoundError(f"Network '{net}' not found")
        return records.delete_network(cluster.store, network.vni, versions)

    checked_write(cluster, write, f"Network {network.vni}")
    return f"Removed network {network.vni} ({network.description})"


# -- reservations --------------------------------------------------------------------------


def _reservation_write(
    cluster: Cluster,
    net: int | str,
    mac: str,
    build: Callable[[Network, Reservation | None], Reservation],
) -> int:
    """Check and write the reservation ``build`` makes from the network and the MAC's current
    reservation (None if it has none); returns the network's VNI."""
    vni = resolve(cluster.cache, net).vni

    def write(reader: StoreReader) -> Commit:
        versions = records.read_versions(reader, vni)  # before the reads they vouch for
        network = records.read_network(reader, vni)
        if network is None:
            raise NotFoundError(f"Network '{net}' not found")
        existing = {r.mac: r for r in records.read_reservations(reader, vni)}
        wanted = build(network, existing.get(mac))
        address = validation.check_reservation_address(network, wanted.ip4_address)
        hostname = validation.check_hostname(wanted.hostname) if wanted.hostname else ""
        for other in existing.values():
            if other.mac != mac and other.ip4_address == address:
                raise ClusterError(f"Address {address} is already reserved for {other.mac} on network {vni}")
        reservation = Reservation(mac=mac, ip4_address=address, hostname=hostname)
        return records.put_reservation(cluster.store, vni, reservation, versions)

    checked_write(cluster, write, f"The reservations of network {vni}")
    return vni


def add_reservation(
    cluster: Cluster, net: int | str, mac: str, ip4_address: str, hostname: str | None = None
) -> str:
    """Reserve ``ip4_address`` for ``mac`` on a managed network with DHCPv4; 400 when the MAC
    has a reservation there already."""
    mac = validation.normalise_mac(mac)

    def build(network: Network, current: Reservation | None) -> Reservation:
        if current is not None:
            raise ClusterError(
                f"MAC address {mac} already has a reservation ({current.ip4_address}) "
                f"on network {network.vni}"
            )
        return Reservation(mac=mac, ip4_address=ip4_address or "", hostname=_text(hostname))

    vni = _reservation_write(cluster, net, mac, build)
    return f"Added DHCP reservation of {ip4_address} for {mac} on network {vni}"


def modify_reservation(
    cluster: Cluster,
    net: int | str,
    mac: str,
    ip4_address: str | None = None,
    hostname: str | None = None,
) -> str:
    """Change a reservation's address and/or host name (None keeps it); 404 when there is none."""
    mac = validation.normalise_mac(mac)

    def build(network: Network, current: Reservation | None) -> Reservation:
        if current is None:
            raise NotFoundError(f"Network {network.vni} has no reservation for {mac}")
        return Reservation(
            mac=mac,
            ip4_address=current.ip4_address if ip4_address is None else ip4_address,
            hostname=current.hostname if hostname is None else _text(hostname),
        )

    vni = _reservation_write(cluster, net, mac, build)
    return f"Modified DHCP reservation of {mac} on network {vni}"


def set_reservation(
    cluster: Cluster, net: int | str, mac: str, ip4_address: str, hostname: str | None = None
) -> str:
    """Reserve ``ip4_address`` for ``mac``, replacing the MAC's reservation if it has one."""
    mac = validation.normalise_mac(mac)

    def build(_: Network, __: Reservation | None) -> Reservation:
        return Reservation(mac=mac, ip4_address=ip4_address or "", hostname=_text(hostname))

    vni = _reservation_write(cluster, net, mac, build)
    return f"Set DHCP reservation of {ip4_address} for {mac} on network {vni}"


def remove_reservation(cluster: Cluster, net: int | str, mac: str) -> str:
    """Remove the reservation of ``mac``; 404 when there is none."""
    vni = resolve(cluster.cache, net).vni
    wanted = mac.strip().lower().replace("-", ":")

    def write(reader: StoreReader) -> Commit:
        versions = records.read_versions(reader, vni)
        if wanted not in {r.mac for r in records.read_reservations(reader, vni)}:
            raise NotFoundError(f"Network {vni} has no DHCP reservation for MAC address '{mac}'")
        return records.remove_reservation(cluster.store, vni, wanted, versions)

    checked_write(cluster, write, f"The reservations of network {vni}")
    return f"Removed DHCP reservation of {wanted} from network {vni}"


def defined_vnis(cache: ClusterCache) -> set[int]:
    """The VNIs of every network (for the VM definition checks)."""
    return set(records.vnis(cache))
