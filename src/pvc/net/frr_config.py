"""FRR's configuration for PVC's managed client networks: checked input in, config text out.

Every node runs zebra and bgpd and speaks BGP EVPN over the cluster network, so that
each node's VXLAN devices learn the other nodes (type-3 routes: head-end replication
flood entries) and the MACs and addresses behind them (type-2 routes) with no
multicast and no static forwarding entries. The coordinators are route reflectors: they
accept any node of the cluster network as a dynamic neighbour (``bgp listen range``)
and reflect to it, and they also peer with each other, so that losing any coordinator
loses nothing. Other nodes peer with every coordinator. Optionally a node also peers
with upstream routers and announces the managed networks' prefixes (the primary does).

Nothing here does I/O. :class:`FrrParams` refuses anything that is not a valid address,
prefix, number or restricted name, so no value can add a line to the configuration.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pvc.errors import PVCError

#: The private ASN the cluster uses unless told otherwise (RFC 6996 two-byte private range).
DEFAULT_ASN = 65500
#: The highest usable four-byte ASN (4294967295 is reserved).
MAX_ASN = 4294967294
#: A node name, as the node configuration allows it: it becomes FRR's hostname.
NODE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
#: The longest path of a Unix socket (``sun_path`` holds 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
#: The longest socket name FRR puts in the runtime directory (``zserv.api``, ``zebra.vty``...).
LONGEST_SOCKET_NAME = "zserv.api"

#: Peer groups and route maps, as named in the rendered configuration.
COORDINATORS_GROUP = "COORDINATORS"
NODES_GROUP = "NODES"
UPSTREAM_IN = "PVC-UPSTREAM-IN"
UPSTREAM_OUT = "PVC-UPSTREAM-OUT"
#: Address families of the managed networks' prefixes, by IP version.
UNICAST_FAMILY = {4: "ipv4 unicast", 6: "ipv6 unicast"}


class FrrConfigError(PVCError, ValueError):
    """A value given for FRR's configuration is refused; the message names it."""


def _unscoped(what: str, value: object, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    # ipaddress accepts any text after '%' in an IPv6 address as its scope (spaces and
    # line breaks included), and keeps it in str(): refuse it, it has no place here.
    if getattr(address, "scope_id", None) is not None:
        raise FrrConfigError(f"{what}: {value!r} has a scope (%...), which is not allowed here")


def _address(what: str, value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise FrrConfigError(f"{what}: {value!r} is not an IP address")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise FrrConfigError(f"{what}: {value!r} is not an IP address") from None
    _unscoped(what, value, address)
    return address


def _ipv4(what: str, value: object) -> ipaddress.IPv4Address:
    address = _address(what, value)
    if not isinstance(address, ipaddress.IPv4Address):
        raise FrrConfigError(f"{what}: {value!r} is not an IPv4 address (FRR's EVPN needs an IPv4 underlay)")
    return address


def _network(what: str, value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    refusal = f"{what}: {value!r} is not a network prefix (address/length, no host bits)"
    if not isinstance(value, str | ipaddress.IPv4Network | ipaddress.IPv6Network):
        raise FrrConfigError(refusal)
    try:
        network = ipaddress.ip_network(value)
    except ValueError:
        raise FrrConfigError(refusal) from None
    _unscoped(what, value, network.network_address)
    return network


def _asn(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ASN:
        raise FrrConfigError(f"{what}: {value!r} is not an AS number (1 to {MAX_ASN})")
    return value


def _sequence(what: str, value: object) -> tuple[object, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise FrrConfigError(f"{what}: expected a list, not {value!r}")
    return tuple(value)


def _sorted_addresses(what: str, values: object) -> tuple[str, ...]:
    """Distinct addresses in a stable order, so that reordering the input changes no config."""
    addresses = {_address(what, value) for value in _sequence(what, values)}
    return tuple(str(address) for address in sorted(addresses, key=lambda a: (a.version, a)))


@dataclass(frozen=True)
class BgpTimers:
    """BGP timers: keepalive, hold time and connect retry interval in seconds, and how long
    bgpd gathers updates for peers that just came up (``coalesce_ms``, milliseconds).

    The defaults are those of FRR's ``datacenter`` profile for keepalive and hold (3/9:
    a dead peer's routes go within 9 s on a cluster network, where 3 s keepalives cost
    nothing) with a 5 s connect retry. FRR gathers for 1000 ms by default, sized for
    route servers with many peers and prefixes; a cluster has a few hundred EVPN routes,
    and 100 ms brings a starting node's flood entries about a second sooner.
    :data:`LAB_TIMERS` (1/3, connect 1) is for tests and the lab, where quick convergence
    matters more than tolerance of a loaded host.
    """

    keepalive: int = 3
    hold: int = 9
    connect: int = 5
    coalesce_ms: int = 100

    def __post_init__(self) -> None:
        for name in ("keepalive", "hold", "connect", "coalesce_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise FrrConfigError(f"timers.{name}: {value!r} is not a number from 1 to 65535")
        if self.hold < 3 * self.keepalive:
            raise FrrConfigError(
                f"timers.hold: {self.hold} s is less than three keepalives ({self.keepalive} s each)"
            )


#: Quick timers for tests and the lab: peers notice a dead node within 3 s.
LAB_TIMERS = BgpTimers(keepalive=1, hold=3, connect=1)


@dataclass(frozen=True)
class UpstreamBgp:
    """BGP towards the upstream routers: who they are and what this node announces to them.

    ``peers`` are the routers' addresses (IPv4 or IPv6), all in AS ``asn`` (the cluster's
    own ASN makes them iBGP peers). ``ipv4_prefixes`` and ``ipv6_prefixes`` are the managed
    networks this node announces (the primary's, where their gateways live); bgpd
    announces a prefix only while a route to it exists (the gateway's connected route).
    Prefixes of a family need a peer of that family. ``update_source`` is the address the
    sessions start from (e.g. the upstream floating address), None for the kernel's choice.
    Nothing is accepted from upstream: the routes in are all refused.
    """

    peers: tuple[str, ...]
    asn: int
    ipv4_prefixes: tuple[str, ...] = ()
    ipv6_prefixes: tuple[str, ...] = ()
    update_source: str | None = None

    def __post_init__(self) -> None:
        peers = _sorted_addresses("upstream.peers", self.peers)
        if not peers:
            raise FrrConfigError("upstream.peers: at least one upstream router is needed")
        object.__setattr__(self, "peers", peers)
        object.__setattr__(self, "asn", _asn("upstream.asn", self.asn))
        versions = {_address("upstream.peers", peer).version for peer in peers}
        for version, name in ((4, "ipv4_prefixes"), (6, "ipv6_prefixes")):
            what = f"upstream.{name}"
            prefixes = {_network(what, value) for value in _sequence(what, getattr(self, name))}
            for prefix in prefixes:
                if prefix.version != version:
                    raise FrrConfigError(f"{what}: {prefix} is not an IPv{version} prefix")
            if prefixes and version not in versions:
                raise FrrConfigError(f"{what}: no IPv{version} upstream peer to announce them to")
            object.__setattr__(self, name, tuple(str(prefix) for prefix in sorted(prefixes)))
        if self.update_source is not None:
            source = _address("upstream.update_source", self.update_source)
            object.__setattr__(self, "update_source", str(source))

    def prefixes(self, version: int) -> tuple[str, ...]:
        """The prefixes of IP version ``version`` (4 or 6) to announce."""
        return self.ipv4_prefixes if version == 4 else self.ipv6_prefixes

    def peers_of(self, version: int) -> tuple[str, ...]:
        """The upstream peers whose address is of IP version ``version``."""
        return tuple(peer for peer in self.peers if ipaddress.ip_address(peer).version == version)


@dataclass(frozen=True)
class FrrParams:
    """Everything FRR's configuration on one node depends on.

    ``router_id`` is the node's cluster network address (also its VXLAN tunnel source);
    ``cluster_network`` the cluster network (``10.0.1.0/24``), over which coordinators
    accept dynamic neighbours; ``coordinators`` the coordinators' cluster addresses.
    ``directory`` holds the configuration, sockets and logs (FRR's user must own it).
    Addresses and prefixes are normalised and sorted, so equal inputs render equal text.
    """

    node_name: str
    router_id: str
    cluster_network: str
    coordinators: tuple[str, ...]
    is_coordinator: bool
    directory: str
    asn: int = DEFAULT_ASN
    timers: BgpTimers = field(default_factory=BgpTimers)
    upstream: UpstreamBgp | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.node_name, str) or not NODE_NAME.fullmatch(self.node_name):
            raise FrrConfigError(f"node_name: {self.node_name!r} is not a node name ({NODE_NAME.pattern})")
        router_id = _ipv4("router_id", self.router_id)
        network = _network("cluster_network", self.cluster_network)
        if not isinstance(network, ipaddress.IPv4Network):
            raise FrrConfigError(f"cluster_network: {network} is not an IPv4 network")
        if router_id not in network:
            raise FrrConfigError(f"router_id: {router_id} is not in the cluster network {network}")
        coordinators = _sorted_addresses("coordinators", self.coordinators)
        for coordinator in coordinators:
            if ipaddress.ip_address(coordinator) not in network:
                raise FrrConfigError(f"coordinators: {coordinator} is not in the cluster network {network}")
        if not isinstance(self.is_coordinator, bool):
            raise FrrConfigError(f"is_coordinator: {self.is_coordinator!r} is not a boolean")
        if self.is_coordinator and str(router_id) not in coordinators:
            raise FrrConfigError(f"coordinators: a coordinator's own address {router_id} is not listed")
        if not self.is_coordinator and str(router_id) in coordinators:
            raise FrrConfigError(f"coordinators: {router_id} is listed but this node is not a coordinator")
        if not coordinators:
            raise FrrConfigError("coordinators: at least one coordinator is needed")
        object.__setattr__(self, "router_id", str(router_id))
        object.__setattr__(self, "cluster_network", str(network))
        object.__setattr__(self, "coordinators", coordinators)
        object.__setattr__(self, "asn", _asn("asn", self.asn))
        if not isinstance(self.timers, BgpTimers):
            raise FrrConfigError(f"timers: {self.timers!r} is not a BgpTimers")
        if self.upstream is not None:
            if not isinstance(self.upstream, UpstreamBgp):
                raise FrrConfigError(f"upstream: {self.upstream!r} is not an UpstreamBgp")
            taken = set(self.upstream.peers) & {*coordinators, str(router_id)}
            if taken:
                names = ", ".join(sorted(taken))
                raise FrrConfigError(f"upstream.peers: {names} is a cluster node, not upstream")
        self._check_directory()

    def _check_directory(self) -> None:
        path = PurePosixPath(str(self.directory))
        if not path.is_absolute() or ".." in path.parts or "\n" in str(self.directory):
            raise FrrConfigError(f"directory: {self.directory!r} is not an absolute path")
        if len(str(path / LONGEST_SOCKET_NAME).encode()) > MAX_SOCKET_PATH:
            raise FrrConfigError(f"directory: {self.directory!r} is too long for Unix sockets in it")
        object.__setattr__(self, "directory", str(path))

    @property
    def peer_coordinators(self) -> tuple[str, ...]:
        """The coordinators this node peers with by address: all of them but itself."""
        return tuple(address for address in self.coordinators if address != self.router_id)

    @property
    def cluster_id(self) -> str:
        """The route reflectors' shared cluster id: the cluster network's own address.

        Shared so that a route one reflector reflected is not taken back by another (every
        node peers with every reflector directly), and stable while coordinators change.
        """
        return str(ipaddress.ip_network(self.cluster_network).network_address)


def _header(params: FrrParams) -> list[str]:
    return ["frr defaults datacenter", f"hostname {params.node_name}", "log stdout informational", "!"]


def render_zebra(params: FrrParams) -> str:
    """zebra.conf: zebra needs nothing but its name; EVPN state comes from bgpd and the kernel."""
    return "\n".join(_header(params)) + "\n"


def _peer_group(name: str, params: FrrParams) -> list[str]:
    timers = params.timers
    return [
        f" neighbor {name} peer-group",
        f" neighbor {name} remote-as {params.asn}",
        f" neighbor {name} timers {timers.keepalive} {timers.hold}",
        f" neighbor {name} timers connect {timers.connect}",
    ]


def _upstream_neighbours(upstream: UpstreamBgp, timers: BgpTimers) -> list[str]:
    lines = []
    for peer in upstream.peers:
        lines += [
            f" neighbor {peer} remote-as {upstream.asn}",
            f" neighbor {peer} timers {timers.keepalive} {timers.hold}",
            f" neighbor {peer} timers connect {timers.connect}",
        ]
        if upstream.update_source:
            lines.append(f" neighbor {peer} update-source {upstream.update_source}")
    return lines


def _upstream_families(upstream: UpstreamBgp) -> list[str]:
    lines = []
    for version, family in UNICAST_FAMILY.items():
        peers = upstream.peers_of(version)
        if not peers:
            continue
        lines += [" !", f" address-family {family}"]
        lines += [f"  network {prefix}" for prefix in upstream.prefixes(version)]
        for peer in peers:
            lines += [
                f"  neighbor {peer} activate",
                f"  neighbor {peer} route-map {UPSTREAM_IN} in",
                f"  neighbor {peer} route-map {UPSTREAM_OUT} out",
            ]
        lines.append(" exit-address-family")
    return lines


def render_bgpd(params: FrrParams) -> str:
    """bgpd.conf for this node: EVPN to the coordinators (and, on one, from every node).

    Only the EVPN family is on by default (``no bgp default ipv4-unicast``); VXLAN devices
    are picked up as they appear (``advertise-all-vni``), so adding a network never
    changes this text. The upstream block appears only when ``params.upstream`` is set.
    """
    lines = _header(params)
    lines += [
        f"router bgp {params.asn}",
        f" bgp router-id {params.router_id}",
        " no bgp default ipv4-unicast",
        " bgp network import-check",
        f" coalesce-time {params.timers.coalesce_ms}",
    ]
    if params.is_coordinator:
        lines.append(f" bgp cluster-id {params.cluster_id}")
    if params.peer_coordinators:
        lines += _peer_group(COORDINATORS_GROUP, params)
        lines += [f" neighbor {peer} peer-group {COORDINATORS_GROUP}" for peer in params.peer_coordinators]
    if params.is_coordinator:
        lines += _peer_group(NODES_GROUP, params)
        lines.append(f" bgp listen range {params.cluster_network} peer-group {NODES_GROUP}")
    if params.upstream is not None:
        lines += _upstream_neighbours(params.upstream, params.timers)
        lines += _upstream_families(params.upstream)
    lines += [" !", " address-family l2vpn evpn"]
    if params.peer_coordinators:
        lines.append(f"  neighbor {COORDINATORS_GROUP} activate")
    if params.is_coordinator:
        lines += [f"  neighbor {NODES_GROUP} activate", f"  neighbor {NODES_GROUP} route-reflector-client"]
    lines += ["  advertise-all-vni", "  advertise-svi-ip", " exit-address-family", "exit", "!"]
    if params.upstream is not None:
        # Announce only what the network statements put in the unicast tables (nothing
        # else enters them: upstream's routes are refused), accept nothing from upstream.
        lines += [f"route-map {UPSTREAM_IN} deny 10", "!", f"route-map {UPSTREAM_OUT} permit 10", "!"]
    return "\n".join(lines) + "\n"


def announced_prefixes(bgpd_conf: str) -> frozenset[str]:
    """The prefixes the ``network`` statements of a rendered bgpd.conf announce."""
    return frozenset(line.split()[1] for line in bgpd_conf.splitlines() if line.startswith("  network "))


def prefix_change_commands(old_conf: str, new_conf: str) -> list[str] | None:
    """The vtysh commands that turn a running ``old_conf`` into ``new_conf``, when only the
    announced prefixes differ between them; None when anything else differs (bgpd must
    then restart with the new file). Both are texts :func:`render_bgpd` made.

    Every prefix of ``new_conf`` is declared again (bgpd takes a repeat quietly), so one
    that went missing from the running bgpd comes back; taking away one it no longer has
    fails, and the caller restarts bgpd from the file.
    """

    def without_networks(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("  network ")]

    if without_networks(old_conf) != without_networks(new_conf):
        return None
    old, new = announced_prefixes(old_conf), announced_prefixes(new_conf)
    asn = next(line.split()[2] for line in new_conf.splitlines() if line.startswith("router bgp "))
    commands = ["configure terminal", f"router bgp {asn}"]
    for version, family in UNICAST_FAMILY.items():
        gone = sorted(p for p in old - new if ipaddress.ip_network(p).version == version)
        wanted = sorted(p for p in new if ipaddress.ip_network(p).version == version)
        if gone or wanted:
            commands.append(f"address-family {family}")
            commands += [f"no network {prefix}" for prefix in gone]
            commands += [f"network {prefix}" for prefix in wanted]
            commands.append("exit-address-family")
    commands.append("end")
    return commands
