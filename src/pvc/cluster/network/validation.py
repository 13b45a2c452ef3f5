"""Checks of client network definitions, DHCP reservations and ACLs: pure functions.

Every check raises :class:`~pvc.cluster.errors.ClusterError` (HTTP 400) with a message that
says what to change; none reads or writes cluster state (the callers hand in what they read).

Decisions worth knowing:

* A description names things on the nodes (bridges, firewall chains, DNS): 1-32 letters,
  digits, ``.``, ``_`` and ``-``, starting with a letter or digit. Network descriptions are
  unique in the cluster, ACL descriptions within their network.
* Bridged networks are VLANs on the nodes' bridge device: their VNI is a VLAN id (1-4094) and
  they carry nothing but a description and an MTU (PVC serves no addresses, DHCP or DNS there).
* A managed network's subnet needs its gateway (the primary's address in it) and the reverse;
  IPv4 subnets of managed networks may not overlap each other, nor may IPv6 ones.
* DHCP serves a domain: a managed network with DHCPv4 or IPv6 (whose router advertisements and
  DHCPv6 PVC always serves) needs a ``domain``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from pvc.cluster.errors import ClusterError
from pvc.state.networks import BRIDGED, DIRECTIONS, MANAGED, NETWORK_TYPES, Network

#: VNIs of VXLANs (24 bits, 0 reserved) and VLAN ids of bridged networks.
VNI_MIN, VNI_MAX = 1, 16777215
VLAN_MIN, VLAN_MAX = 1, 4094
#: MTUs a network may ask for (None: the default of the node's device).
MTU_MIN, MTU_MAX = 576, 9000
#: Longest subnet prefix a managed IPv4 network may have: room for a gateway and clients.
IP4_MAX_PREFIX = 30
DESCRIPTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MAC = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}")
#: What a bridged network may not carry, besides its IPv6 settings.
CONFIG_4 = ("domain", "name_servers", "ip4_network", "ip4_gateway", "dhcp4_start", "dhcp4_end")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_vni(value: int | str | None) -> int:
    """A VNI: a whole number 1-16777215."""
    text = str(value).strip() if value is not None else ""
    if not (text.isascii() and text.isdigit()) or not VNI_MIN <= int(text) <= VNI_MAX:
        raise ClusterError(f"VNI '{value}' is invalid: give a whole number from {VNI_MIN} to {VNI_MAX}")
    return int(text)


def check_description(description: str | None, what: str = "Description") -> str:
    """A description that may name things: 1-32 of letters, digits, '.', '_', '-'."""
    if description is None or not DESCRIPTION.fullmatch(description):
        raise ClusterError(
            f"{what} '{description or ''}' is invalid: use 1-32 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return description


def parse_mtu(value: int | str | None) -> int | None:
    """An MTU from 576 to 9000; None (or empty) for the default of the node's device."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not MTU_MIN <= int(text) <= MTU_MAX:
        raise ClusterError(
            f"MTU '{value}' is invalid: give a whole number from {MTU_MIN} to {MTU_MAX}, "
            "or leave it empty for the default of the nodes' device"
        )
    return int(text)


def check_dns_name(name: str, what: str = "Domain") -> str:
    """A DNS name: dot-separated labels of letters, digits and inner '-', at most 253 characters."""
    labels = name.split(".")
    if not name or len(name) > 253 or not all(DNS_LABEL.fullmatch(label) for label in labels):
        raise ClusterError(
            f"{what} '{name}' is not a valid DNS name: dot-separated labels of 1-63 letters, digits "
            "or '-' (not at either end of a label), 253 characters at most, no trailing dot"
        )
    return name.lower()


def check_hostname(name: str) -> str:
    """A host name as DHCP hands it out: one DNS label."""
    if not DNS_LABEL.fullmatch(name):
        raise ClusterError(
            f"Host name '{name}' is invalid: 1-63 letters, digits or '-' (not at either end), no dots"
        )
    return name.lower()


def parse_name_servers(values: Iterable[str] | None) -> list[str]:
    """Name server addresses (IPv4 or IPv6), normalised; empty entries are dropped."""
    servers = []
    for value in values or ():
        for item in str(value).split(","):
            text = item.strip()
            if not text:
                continue
            try:
                servers.append(str(ipaddress.ip_address(text)))
            except ValueError:
                raise ClusterError(f"Name server '{text}' is not an IP address") from None
    return servers


def normalise_mac(mac: str | None) -> str:
    """A unicast MAC address in lower case with colons (``-`` separators are accepted)."""
    text = (mac or "").strip().lower()
    if not MAC.fullmatch(text):
        raise ClusterError(
            f"MAC address '{mac or ''}' is invalid: give six hex pairs, e.g. 52:54:00:12:34:56"
        )
    text = text.replace("-", ":")
    if int(text[:2], 16) & 1:
        raise ClusterError(f"MAC address '{text}' is a multicast address; a client needs a unicast one")
    if text == "00:00:00:00:00:00":
        raise ClusterError("MAC address 00:00:00:00:00:00 is not a client's address")
    return text


def _subnet(text: str, version: int, what: str) -> IPNetwork:
    if "/" not in text:
        raise ClusterError(f"{what} '{text}' has no prefix length: give it in CIDR form (e.g. 10.1.0.0/24)")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ClusterError(f"{what} '{text}' is not a subnet in CIDR form (e.g. 10.1.0.0/24)") from None
    if network.version != version:
        raise ClusterError(f"{what} '{text}' is not an IPv{version} subnet")
    if ipaddress.ip_interface(text).ip != network.network_address:
        raise ClusterError(f"{what} '{text}' has host bits set; did you mean {network}?")
    return network


def _address(text: str, version: int, what: str) -> IPAddress:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ClusterError(f"{what} '{text}' is not an IP address") from None
    if address.version != version:
        raise ClusterError(f"{what} '{text}' is not an IPv{version} address")
    return address


def _host_in(address: IPAddress, network: IPNetwork, what: str) -> None:
    """``address`` is a usable host address of ``network``."""
    if address not in network:
        raise ClusterError(f"{what} {address} is not inside the network {network}")
    if address == network.network_address:
        raise ClusterError(f"{what} {address} is the network address of {network}; use a host address")
    if network.version == 4 and address == network.broadcast_address:
        raise ClusterError(f"{what} {address} is the broadcast address of {network}; use a host address")


Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Address space no client network may use: this-network, loopback, link-local (the
#: metadata service lives there), multicast and reserved ranges.
SPECIAL_SUBNETS = tuple(
    ipaddress.ip_network(subnet)
    for subnet in (
        "0.0.0.0/8",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "fe80::/10",
        "ff00::/8",
    )
)


def check_not_reserved(
    subnet: Subnet | None,
    reserved: Sequence[Subnet],
) -> None:
    """ClusterError unless ``subnet`` stays clear of the special ranges and of ``reserved``
    (the cluster's own upstream, cluster and storage networks): a client network there
    would put the primary's gateway address on top of the cluster's own addresses."""
    if subnet is None:
        return
    for taken in (*SPECIAL_SUBNETS, *reserved):
        if taken.version == subnet.version and subnet.overlaps(taken):
            what = "the cluster's own network" if taken in reserved else "reserved address space"
            raise ClusterError(f"Subnet {subnet} overlaps {taken}, {what}; choose another subnet")


def check_network(
    network: Network,
    others: Sequence[Network] = (),
    reserved: Sequence[Subnet] = (),
) -> Network:
    """A network definition checked on its own, against the cluster's ``others`` (every
    other network) and clear of ``reserved`` subnets; returns it with its addresses normalised."""
    if network.type not in NETWORK_TYPES:
        raise ClusterError(f"Network type '{network.type}' is invalid: use managed or bridged")
    parse_vni(network.vni)
    check_description(network.description)
    parse_mtu(network.mtu)
    for other in others:
        if other.vni == network.vni:
            raise ClusterError(f"A network with VNI {network.vni} already exists")
        if other.description == network.description:
            raise ClusterError(
                f"A network described '{network.description}' already exists (VNI {other.vni}); "
                "descriptions name networks and must be unique"
            )
    if network.type == BRIDGED:
        return _check_bridged(network)
    return _check_managed(network, others, reserved)


def _check_bridged(network: Network) -> Network:
    if not VLAN_MIN <= network.vni <= VLAN_MAX:
        raise ClusterError(
            f"VNI {network.vni} is invalid for a bridged network: it is a VLAN id, {VLAN_MIN}-{VLAN_MAX}"
        )
    given = [name for name in (*CONFIG_4, "ip6_network", "ip6_gateway") if getattr(network, name)]
    if network.dhcp4:
        given.append("dhcp4")
    if given:
        raise ClusterError(
            f"A bridged network carries no addresses, DHCP or DNS from PVC; remove {', '.join(given)} "
            "(or make it a managed network)"
        )
    return network


def _check_managed(
    network: Network,
    others: Sequence[Network],
    reserved: Sequence[Subnet],
) -> Network:
    servers = parse_name_servers(network.name_servers)
    domain = check_dns_name(network.domain) if network.domain else ""
    ip4 = _check_ip4(network)
    ip6 = _check_ip6(network)
    check_not_reserved(ip4, reserved)
    check_not_reserved(ip6, reserved)
    dhcp6 = ip6 is not None
    if (network.dhcp4 or dhcp6) and not domain:
        served = "DHCPv4" if network.dhcp4 else "IPv6 (router advertisements and DHCPv6)"
        raise ClusterError(f"A managed network that serves {served} needs a domain for its clients' names")
    for other in others:
        if other.type != MANAGED:
            continue
        for mine, theirs in ((ip4, other.ip4_network), (ip6, other.ip6_network)):
            if mine is not None and theirs and mine.overlaps(ipaddress.ip_network(theirs)):
                raise ClusterError(
                    f"Subnet {mine} overlaps {theirs} of network {other.vni} ({other.description}); "
                    "managed networks need subnets of their own"
                )
    return Network(
        **{
            **vars(network),
            "domain": domain,
            "name_servers": servers,
            "ip4_network": str(ip4) if ip4 else "",
            "ip6_network": str(ip6) if ip6 else "",
            "dhcp6": dhcp6,
        }
    )


def _check_ip4(network: Network) -> ipaddress.IPv4Network | None:
    if not network.ip4_network:
        if network.ip4_gateway:
            raise ClusterError("An IPv4 gateway needs the IPv4 network (ip4_network) it belongs to")
        if network.dhcp4 or network.dhcp4_start or network.dhcp4_end:
            raise ClusterError("DHCPv4 needs an IPv4 network (ip4_network) and gateway")
        return None
    subnet = _subnet(network.ip4_network, 4, "IPv4 network")
    assert isinstance(subnet, ipaddress.IPv4Network)
    if subnet.prefixlen > IP4_MAX_PREFIX:
        raise ClusterError(
            f"IPv4 network {subnet} is too small: use a prefix of /{IP4_MAX_PREFIX} or shorter"
        )
    if not network.ip4_gateway:
        raise ClusterError(f"IPv4 network {subnet} needs a gateway (ip4_gateway) inside it")
    gateway = _address(network.ip4_gateway, 4, "IPv4 gateway")
    _host_in(gateway, subnet, "IPv4 gateway")
    if not network.dhcp4:
        if network.dhcp4_start or network.dhcp4_end:
            raise ClusterError("A DHCPv4 range (dhcp4_start, dhcp4_end) is only for a network with dhcp4 on")
        return subnet
    if not network.dhcp4_start or not network.dhcp4_end:
        raise ClusterError("DHCPv4 needs the first and last address it hands out (dhcp4_start, dhcp4_end)")
    start = _address(network.dhcp4_start, 4, "DHCPv4 start")
    end = _address(network.dhcp4_end, 4, "DHCPv4 end")
    _host_in(start, subnet, "DHCPv4 start")
    _host_in(end, subnet, "DHCPv4 end")
    if int(start) > int(end):
        raise ClusterError(f"DHCPv4 start {start} is after its end {end}")
    if int(start) <= int(gateway) <= int(end):
        raise ClusterError(
            f"The gateway {gateway} is inside the DHCPv4 range {start}-{end}; move one of them"
        )
    return subnet


def _check_ip6(network: Network) -> ipaddress.IPv6Network | None:
    if not network.ip6_network:
        if network.ip6_gateway:
            raise ClusterError("An IPv6 gateway needs the IPv6 network (ip6_network) it belongs to")
        return None
    subnet = _subnet(network.ip6_network, 6, "IPv6 network")
    assert isinstance(subnet, ipaddress.IPv6Network)
    if not network.ip6_gateway:
        raise ClusterError(f"IPv6 network {subnet} needs a gateway (ip6_gateway) inside it")
    _host_in(_address(network.ip6_gateway, 6, "IPv6 gateway"), subnet, "IPv6 gateway")
    return subnet


def check_reservation_address(network: Network, address: str) -> str:
    """An address a reservation on ``network`` may hand out: inside its IPv4 network, not its
    gateway (the network must be managed with DHCPv4)."""
    if network.type != MANAGED or not network.dhcp4:
        raise ClusterError(
            f"Network {network.vni} does not serve DHCPv4; reservations need a managed network with dhcp4 on"
        )
    subnet = ipaddress.ip_network(network.ip4_network)
    parsed = _address(address.strip(), 4, "Reserved address")
    _host_in(parsed, subnet, "Reserved address")
    if str(parsed) == network.ip4_gateway:
        raise ClusterError(f"Reserved address {parsed} is the network's gateway")
    return str(parsed)


def check_acl_direction(direction: str) -> str:
    """``in`` or ``out``."""
    if direction not in DIRECTIONS:
        raise ClusterError(f"ACL direction '{direction}' is invalid: use in or out")
    return direction


def parse_order(order: int | str | None) -> int | None:
    """An ACL's place: a whole number of at least 1 (None: last)."""
    if order is None or (isinstance(order, str) and not order.strip()):
        return None
    text = str(order).strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ClusterError(f"ACL order '{order}' is invalid: give a whole number of at least 1")
    return int(text)
