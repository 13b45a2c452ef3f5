"""DHCP and DNS for one managed client network: a dnsmasq instance per network.

:func:`render_config` writes the configuration of network VNI from plain values (a
:class:`DnsmasqNetwork`, checked again here: every value that reaches a line is a checked
name, MAC, IP address or path, see :mod:`pvc.net.dhcp_values`). dnsmasq serves only the
network's bridge ``vmbr<VNI>`` (``interface``, ``bind-interfaces``, never ``lo``), forwards
no query anywhere (``no-resolv``, no servers), reads no ``/etc/hosts`` and answers for the
network's domain alone (``local=/<domain>/``). It keeps no lease file
(``leasefile-ro``): the lease hook (``dhcp-script``, see :mod:`pvc.node.lease_hook`) keeps
the leases, prints them when dnsmasq calls ``<hook> init`` at start and records each
``add``/``old``/``del``. The hook learns its network from :data:`VNI_ENV`, set in
dnsmasq's environment, which dnsmasq hands on to the hook.

Reservations (MAC, IPv4 address, host name) live in two files dnsmasq re-reads on
SIGHUP: ``reservations`` (``dhcp-hostsfile``) for DHCP and ``names`` (``addn-hosts``) so
that a reserved host's name resolves before its first lease. A change of reservations
therefore needs :meth:`DnsmasqInstance.reload`, not a restart.

IPv4 DHCP is on when the network has a range; without one, reservations are DNS names
only. With an IPv6 network dnsmasq sends router advertisements (``enable-ra``): SLAAC
only, or with ``dhcp6`` also stateful DHCPv6 from the pool ``<network>::1000`` to
``<network>::ffff`` (:data:`DHCP6_POOL`).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pvc import commands, processes
from pvc.commands import CommandError
from pvc.domain_xml.bridges import bridge_name
from pvc.errors import PVCError
from pvc.net import dhcp_values as values
from pvc.net.dhcp_values import DhcpValueError
from pvc.processes import ProcessRef

#: The environment variable naming the network (its VNI) for dnsmasq's lease hook.
VNI_ENV = "PVC_NETWORK_VNI"
#: The search path dnsmasq and its hook get when this process has none.
DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: Lease time handed out unless the network says otherwise, and dnsmasq's minimum, in seconds.
DEFAULT_LEASE_TIME = 3600
MIN_LEASE_TIME = 120
#: Offsets in an IPv6 network of the first and last address DHCPv6 hands out.
DHCP6_POOL = (0x1000, 0xFFFF)
#: Seconds dnsmasq may take to start (it answers in about 12 ms) and to stop.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: The files of one instance in its directory.
CONFIG_FILE, PID_FILE, LOG_FILE = "dnsmasq.conf", "dnsmasq.pid", "dnsmasq.log"
RESERVATIONS_FILE, NAMES_FILE = "reservations", "names"


class DnsmasqError(PVCError):
    """A network's DHCP/DNS configuration is refused, or dnsmasq failed to start or stop."""


@dataclass(frozen=True)
class Reservation:
    """A static DHCP lease: this MAC always gets this IPv4 address and host name."""

    mac: str
    ip4: str
    hostname: str

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mac", values.mac(self.mac))
            object.__setattr__(self, "ip4", str(values.ip4(self.ip4, "reserved address")))
            object.__setattr__(self, "hostname", values.hostname(self.hostname))
        except DhcpValueError as error:
            raise DnsmasqError(f"reservation: {error}") from None


@dataclass(frozen=True)
class DnsmasqNetwork:
    """What dnsmasq serves on one managed network; values are checked when made.

    ``dhcp4_start``/``dhcp4_end`` (both or neither) turn IPv4 DHCP on; ``name_servers``
    are handed to clients (the gateways when empty); ``bridge`` is ``vmbr<VNI>`` unless
    given.
    """

    vni: int
    domain: str
    ip4_network: str | None = None
    gateway4: str | None = None
    dhcp4_start: str | None = None
    dhcp4_end: str | None = None
    ip6_network: str | None = None
    gateway6: str | None = None
    dhcp6: bool = False
    reservations: tuple[Reservation, ...] = ()
    name_servers: tuple[str, ...] = ()
    lease_time: int = DEFAULT_LEASE_TIME
    bridge: str = field(default="")

    def __post_init__(self) -> None:
        try:
            self._check()
        except DhcpValueError as error:
            raise DnsmasqError(f"network {self.vni}: {error}") from None

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def _check(self) -> None:
        if isinstance(self.vni, bool) or not isinstance(self.vni, int) or not 0 < self.vni < 2**24:
            raise DnsmasqError(f"a network's VNI is a number from 1 to {2**24 - 1}, not {self.vni!r}")
        self._set("bridge", values.interface(self.bridge or bridge_name(self.vni)))
        self._set("domain", values.domain(self.domain))
        if self.ip4_network is None and self.ip6_network is None:
            raise DhcpValueError("a managed network needs an IPv4 or an IPv6 network")
        if isinstance(self.lease_time, bool) or not isinstance(self.lease_time, int):
            raise DhcpValueError(f"lease time {self.lease_time!r} is not a number of seconds")
        if self.lease_time < MIN_LEASE_TIME:
            raise DhcpValueError(f"lease time {self.lease_time} s is below dnsmasq's {MIN_LEASE_TIME} s")
        if isinstance(self.name_servers, str):
            raise DhcpValueError("name servers are a sequence of addresses")
        self._set("name_servers", tuple(str(values.ip_any(ns, "name server")) for ns in self.name_servers))
        self._check_ip4()
        self._check_ip6()
        self._check_reservations()

    def _check_ip4(self) -> None:
        if self.ip4_network is None:
            if any(v is not None for v in (self.gateway4, self.dhcp4_start, self.dhcp4_end)):
                raise DhcpValueError("an IPv4 gateway or DHCP range needs an IPv4 network")
            return
        net = values.network4(self.ip4_network)
        self._set("ip4_network", str(net))
        gateway = _host_in(values.ip4(self.gateway4, "IPv4 gateway"), net, "IPv4 gateway")
        self._set("gateway4", str(gateway))
        if (self.dhcp4_start is None) != (self.dhcp4_end is None):
            raise DhcpValueError("a DHCP range needs both its start and its end")
        if self.dhcp4_start is not None:
            start = _host_in(values.ip4(self.dhcp4_start, "DHCP start"), net, "DHCP start")
            end = _host_in(values.ip4(self.dhcp4_end, "DHCP end"), net, "DHCP end")
            if start > end:
                raise DhcpValueError(f"DHCP range {start} to {end} ends before it starts")
            if start <= gateway <= end:
                raise DhcpValueError(f"DHCP range {start} to {end} holds the gateway {gateway}")
            self._set("dhcp4_start", str(start))
            self._set("dhcp4_end", str(end))

    def _check_ip6(self) -> None:
        if self.ip6_network is None:
            if self.gateway6 is not None or self.dhcp6:
                raise DhcpValueError("an IPv6 gateway or DHCPv6 needs an IPv6 network")
            return
        net = values.network6(self.ip6_network)
        self._set("ip6_network", str(net))
        self._set("gateway6", str(_host_in(values.ip6(self.gateway6, "IPv6 gateway"), net, "IPv6 gateway")))
        self._set("dhcp6", bool(self.dhcp6))

    def _check_reservations(self) -> None:
        if isinstance(self.reservations, Reservation):
            raise DhcpValueError("reservations are a sequence")
        reservations = tuple(self.reservations)
        if reservations and self.ip4_network is None:
            raise DhcpValueError("reservations need an IPv4 network")
        net = ipaddress.IPv4Network(self.ip4_network) if self.ip4_network else None
        for reservation in reservations:
            if not isinstance(reservation, Reservation):
                raise DhcpValueError(f"{reservation!r} is not a reservation")
            address = _host_in(ipaddress.IPv4Address(reservation.ip4), net, "reserved address")
            if str(address) == self.gateway4:
                raise DhcpValueError(f"reservation of {reservation.mac} takes the gateway {address}")
        for key in ("mac", "ip4", "hostname"):
            seen = [getattr(reservation, key) for reservation in reservations]
            doubles = sorted({item for item in seen if seen.count(item) > 1})
            if doubles:
                raise DhcpValueError(f"reservations share {key} {', '.join(doubles)}")
        self._set("reservations", tuple(sorted(reservations, key=lambda r: ipaddress.IPv4Address(r.ip4))))


def _host_in(address, network, what: str):
    """``address`` if it is a host address of ``network`` (not its network or broadcast address)."""
    if address not in network:
        raise DhcpValueError(f"{what} {address} is outside {network}")
    if network.version == 4 and address in (network.network_address, network.broadcast_address):
        raise DhcpValueError(f"{what} {address} is not a host address of {network}")
    if network.version == 6 and address == network.network_address:
        raise DhcpValueError(f"{what} {address} is not a host address of {network}")
    return address


@dataclass(frozen=True)
class InstanceFiles:
    """Where one instance keeps its files: a directory of its own."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def pid(self) -> Path:
        return self.directory / PID_FILE

    @property
    def log(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def reservations(self) -> Path:
        return self.directory / RESERVATIONS_FILE

    @property
    def names(self) -> Path:
        return self.directory / NAMES_FILE


def _name_servers(network: DnsmasqNetwork, version: int) -> list[str]:
    servers = [ns for ns in network.name_servers if ipaddress.ip_address(ns).version == version]
    gateway = network.gateway4 if version == 4 else network.gateway6
    return servers or ([gateway] if gateway else [])


def render_config(
    network: DnsmasqNetwork, files: InstanceFiles, hook: str | Path, user: str | None = None
) -> str:
    """The dnsmasq configuration of ``network`` with its files in ``files`` and lease ``hook``.

    ``user`` is the account dnsmasq drops to after start (dnsmasq's own default, nobody,
    when None); it must be able to read the instance's directory.
    """
    try:
        for what, value in (("directory", files.directory), ("lease hook", hook)):
            values.path(value, what)
        if user is not None:
            values.hostname(user, "user")
    except DhcpValueError as error:
        raise DnsmasqError(f"network {network.vni}: {error}") from None
    lines = [
        f"# DHCP and DNS of PVC network {network.vni}; PVC rewrites this file",
        f"interface={network.bridge}",
        "except-interface=lo",
        "bind-interfaces",
        "port=53",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "no-ping",
        "domain-needed",
        f"pid-file={files.pid}",
        f"log-facility={files.log}",
        "log-dhcp",
        f"domain={network.domain}",
        f"local=/{network.domain}/",
        "dhcp-authoritative",
        "leasefile-ro",
        f"dhcp-script={hook}",
        f"dhcp-hostsfile={files.reservations}",
        f"addn-hosts={files.names}",
    ]
    if user is not None:
        lines.append(f"user={user}")
    if network.ip4_network is not None:
        net = ipaddress.IPv4Network(network.ip4_network)
        if network.dhcp4_start is not None:
            lines.append(
                f"dhcp-range={network.dhcp4_start},{network.dhcp4_end},{net.netmask},{network.lease_time}"
            )
        elif network.reservations:
            lines.append(f"dhcp-range={net.network_address},static,{net.netmask},{network.lease_time}")
        lines.append(f"dhcp-option=option:router,{network.gateway4}")
        lines.append(f"dhcp-option=option:dns-server,{','.join(_name_servers(network, 4))}")
    if network.ip6_network is not None:
        net6 = ipaddress.IPv6Network(network.ip6_network)
        lines.append("enable-ra")
        if network.dhcp6:
            first, last = (net6.network_address + offset for offset in DHCP6_POOL)
            # ``slaac``: stateful DHCPv6 and the prefix's autonomous flag, so hosts without a
            # DHCPv6 client still configure themselves.
            lines.append(f"dhcp-range={first},{last},slaac,{net6.prefixlen},{network.lease_time}")
        else:
            lines.append(f"dhcp-range={net6.network_address},ra-only,{net6.prefixlen},{network.lease_time}")
        servers6 = ",".join(f"[{server}]" for server in _name_servers(network, 6))
        lines.append(f"dhcp-option=option6:dns-server,{servers6}")
    return "\n".join(lines) + "\n"


def render_reservations(network: DnsmasqNetwork) -> str:
    """The ``dhcp-hostsfile``: ``<mac>,<ip>,<hostname>`` per reservation."""
    return "".join(f"{r.mac},{r.ip4},{r.hostname}\n" for r in network.reservations)


def render_names(network: DnsmasqNetwork) -> str:
    """The ``addn-hosts`` file: each reserved host by its full and its short name."""
    return "".join(f"{r.ip4} {r.hostname}.{network.domain} {r.hostname}\n" for r in network.reservations)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` at once, readable by dnsmasq after it dropped privileges."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text)
    temporary.chmod(0o644)
    os.replace(temporary, path)


class DnsmasqInstance:
    """The dnsmasq of one network on this node, owned by the PID it writes to its pid file.

    ``netns`` runs it in that named network namespace; ``env`` adds to the environment
    dnsmasq (and so the lease hook) gets, which holds ``PATH`` and :data:`VNI_ENV`.
    """

    def __init__(
        self,
        network: DnsmasqNetwork,
        directory: Path,
        hook: str | Path,
        *,
        netns: str | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        binary: str = "dnsmasq",
    ) -> None:
        self.network = network
        self.files = InstanceFiles(Path(directory))
        self.hook = str(hook)
        self.netns = netns
        self.env = dict(env or {})
        self.user = user
        self.binary = binary
        self.ref: ProcessRef | None = None

    @property
    def name(self) -> str:
        return f"dnsmasq-vni{self.network.vni}"

    def write_files(self) -> None:
        """Write the configuration, reservations and names for the current network."""
        config = render_config(self.network, self.files, self.hook, self.user)
        self.files.directory.mkdir(parents=True, exist_ok=True)
        self.files.directory.chmod(0o755)
        _write(self.files.reservations, render_reservations(self.network))
        _write(self.files.names, render_names(self.network))
        _write(self.files.config, config)

    def _environment(self) -> dict[str, str]:
        base = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            VNI_ENV: str(self.network.vni),
        }
        return {**base, **self.env}

    def running(self) -> bool:
        """True when the dnsmasq this instance started (or adopted) is alive."""
        return self.ref is not None and processes.is_alive(self.ref)

    def adopt(self) -> bool:
        """Take over a dnsmasq left running for this network (found by its pid file); True if one is."""
        pid = self._read_pid()
        if pid is None:
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        if self._config_argument().encode() not in cmdline:
            return False
        started = processes.start_time_of(pid)
        if started is None:
            return False
        ref = ProcessRef(self.name, pid, started, str(self.files.log))
        if not processes.is_alive(ref):
            return False
        self.ref = ref
        return True

    def _config_argument(self) -> str:
        return f"--conf-file={self.files.config}"

    def _read_pid(self) -> int | None:
        try:
            return int(self.files.pid.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self) -> ProcessRef:
        """Write the files and start dnsmasq (it daemonizes); its ProcessRef.

        A dnsmasq already running for this network (started here, or found by its pid file)
        is kept when its configuration is the current one (re-reading the reservations if
        they changed) and restarted otherwise.
        """
        if self.running() or self.adopt():
            assert self.ref is not None
            current = render_config(self.network, self.files, self.hook, self.user)
            if self.files.config.exists() and self.files.config.read_text() == current:
                self.reload(self.network.reservations)
                return self.ref
            self.stop()
        self.write_files()
        self.files.pid.unlink(missing_ok=True)
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        argv = [*prefix, self.binary, self._config_argument()]
        try:
            commands.run(argv, timeout=START_TIMEOUT, env=self._environment())
        except CommandError as error:
            raise DnsmasqError(f"dnsmasq of network {self.network.vni} did not start: {error}") from None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.adopt():
                assert self.ref is not None
                return self.ref
            time.sleep(0.02)
        raise DnsmasqError(f"dnsmasq of network {self.network.vni} wrote no pid file in {self.files.pid}")

    def reload(self, reservations: tuple[Reservation, ...]) -> None:
        """Serve ``reservations`` from now on: rewrite their files and make dnsmasq re-read them."""
        self.network = replace(self.network, reservations=tuple(reservations))
        self.write_files()
        if self.ref is None or not processes.send(self.ref, signal.SIGHUP):
            raise DnsmasqError(f"dnsmasq of network {self.network.vni} is not running")

    def update(self, network: DnsmasqNetwork) -> str:
        """Serve ``network``: reload when only its reservations changed, restart otherwise.

        Returns what it did: ``unchanged``, ``reloaded`` or ``restarted``.
        """
        if network == self.network and self.running():
            return "unchanged"
        if replace(network, reservations=self.network.reservations) == self.network and self.running():
            self.reload(network.reservations)
            return "reloaded"
        self.stop()
        self.network = network
        self.start()
        return "restarted"

    def stop(self) -> None:
        """Stop dnsmasq (SIGTERM, then SIGKILL) and forget it; nothing to do when it is not running."""
        if self.ref is None:
            self.adopt()
        if self.ref is not None:
            processes.terminate([self.ref], STOP_TIMEOUT)
            if processes.is_alive(self.ref):
                raise DnsmasqError(f"dnsmasq of network {self.network.vni} (pid {self.ref.pid}) did not stop")
        self.ref = None
        self.files.pid.unlink(missing_ok=True)
