"""PowerDNS (authoritative server, gpgsql backend): the DNS aggregator's configuration and process.

The server answers for the managed networks' zones from the local PostgreSQL database
that :mod:`pvc.net.dns_store` keeps in step. Its configuration never lets it reach out:
``security-poll-suffix=`` is empty (no version check query at start), it neither
recurses nor resolves ALIAS targets, is neither primary (no NOTIFY) nor secondary,
takes no dynamic updates, and runs no web server or API. The packet, query and negative
caches and the zone cache are off, so a row written to the database is served on the
next query. Zone transfers are allowed only to ``axfr_from`` (loopback by default).

:class:`PowerDnsService` writes ``pdns.conf`` into a directory of its own, starts
``pdns_server`` in its own session and knows it by PID (see :mod:`pvc.processes`).
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from pvc import processes
from pvc.errors import PVCError
from pvc.processes import ProcessRef

#: The server program.
PDNS_SERVER = "pdns_server"
#: The configuration file's name in its directory (what ``--config-dir`` reads).
CONFIG_FILE = "pdns.conf"
DEFAULT_PORT = 53
#: Seconds to wait for the first answer after a start, and for a stop.
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
#: Seconds one readiness query may take.
PROBE_TIMEOUT = 0.25
DB_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: Passwords are kept to characters that need no quoting in pdns.conf or in libpq's conninfo.
DB_PASSWORD = re.compile(r"^[A-Za-z0-9._~+/=-]{0,128}$")
#: Directory names: absolute, no whitespace, no comment sign, no control characters.
SAFE_PATH = re.compile(r"^/[^\s#\x00-\x1f\x7f]*$")


class PowerDnsError(PVCError):
    """PowerDNS cannot be configured, started or reached."""


def _port(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise PowerDnsError(f"invalid {what} {value!r}")
    return value


def _address(value: object, what: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise PowerDnsError(f"invalid {what} {value!r}: not an IP address") from None


def _path(value: object, what: str) -> str:
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else ""
    if not SAFE_PATH.match(text):
        raise PowerDnsError(
            f"invalid {what} {value!r}: an absolute path without whitespace, '#' or control characters"
        )
    return text


@dataclass(frozen=True)
class PowerDnsConfig:
    """What ``pdns.conf`` says; every value is checked when the object is made.

    ``local_addresses`` are the addresses PowerDNS answers on (the primary's floating
    addresses in production), ``local_port`` its port. ``db_host`` is an IP address or
    the directory of PostgreSQL's unix socket. ``socket_dir`` holds pdns's control socket.
    """

    local_addresses: tuple[str, ...]
    db_host: str
    db_port: int
    socket_dir: str
    db_name: str = "pdns"
    db_user: str = "postgres"
    db_password: str = ""
    local_port: int = DEFAULT_PORT
    axfr_from: tuple[str, ...] = ("127.0.0.0/8", "::1")
    loglevel: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.local_addresses, str) or not self.local_addresses:
            raise PowerDnsError("PowerDNS needs at least one local address (a list of IP addresses)")
        addresses = tuple(_address(address, "local address") for address in self.local_addresses)
        object.__setattr__(self, "local_addresses", addresses)
        _port(self.local_port, "PowerDNS port")
        _port(self.db_port, "database port")
        if isinstance(self.db_host, str) and self.db_host.startswith("/"):
            _path(self.db_host, "database socket directory")
        else:
            object.__setattr__(self, "db_host", _address(self.db_host, "database host"))
        _path(self.socket_dir, "control socket directory")
        for value, what in ((self.db_name, "database name"), (self.db_user, "database user")):
            if not isinstance(value, str) or not DB_IDENTIFIER.match(value):
                raise PowerDnsError(f"invalid {what} {value!r}")
        if not isinstance(self.db_password, str) or not DB_PASSWORD.match(self.db_password):
            raise PowerDnsError("invalid database password: letters, digits and ._~+/=- only")
        if isinstance(self.axfr_from, str):
            raise PowerDnsError("axfr_from is a list of networks")
        try:
            networks = tuple(str(ipaddress.ip_network(net, strict=False)) for net in self.axfr_from)
        except (ValueError, TypeError):
            raise PowerDnsError(f"invalid axfr_from {self.axfr_from!r}: IP networks only") from None
        object.__setattr__(self, "axfr_from", networks)
        if not isinstance(self.loglevel, int) or not 0 <= self.loglevel <= 9:
            raise PowerDnsError(f"invalid PowerDNS log level {self.loglevel!r}")

    def settings(self) -> list[tuple[str, str]]:
        """The ``key=value`` pairs of ``pdns.conf``, in order."""
        return [
            ("launch", "gpgsql"),
            ("gpgsql-host", self.db_host),
            ("gpgsql-port", str(self.db_port)),
            ("gpgsql-dbname", self.db_name),
            ("gpgsql-user", self.db_user),
            ("gpgsql-password", self.db_password),
            ("gpgsql-dnssec", "no"),
            ("local-address", ",".join(self.local_addresses)),
            ("local-port", str(self.local_port)),
            ("socket-dir", self.socket_dir),
            ("daemon", "no"),
            ("guardian", "no"),
            ("disable-syslog", "yes"),
            ("loglevel", str(self.loglevel)),
            ("webserver", "no"),
            ("api", "no"),
            ("cache-ttl", "0"),
            ("negquery-cache-ttl", "0"),
            ("query-cache-ttl", "0"),
            ("zone-cache-refresh-interval", "0"),
            ("primary", "no"),
            ("secondary", "no"),
            ("dnsupdate", "no"),
            ("expand-alias", "no"),
            ("enable-lua-records", "no"),
            ("allow-axfr-ips", ",".join(self.axfr_from)),
            ("version-string", "anonymous"),
            # never ask the outside world about our version (an empty value turns it off)
            ("security-poll-suffix", ""),
        ]

    def render(self) -> str:
        """The text of ``pdns.conf``."""
        lines = ["# Written by PVC; changes here are lost."]
        for key, value in self.settings():
            if any(
                char in value for char in "\r\n\x00"
            ):  # values are checked above; never write a second line
                raise PowerDnsError(f"refusing a line break in the PowerDNS setting {key}")
            lines.append(f"{key}={value}")
        return "\n".join(lines) + "\n"

    @property
    def probe_address(self) -> str:
        """Where to query this server from this host: its first address (loopback for a wildcard)."""
        address = ipaddress.ip_address(self.local_addresses[0])
        if address.is_unspecified:
            return "127.0.0.1" if address.version == 4 else "::1"
        return str(address)


def write_config(config_dir: Path, config: PowerDnsConfig) -> Path:
    """Write ``pdns.conf`` (mode 0640) into ``config_dir`` at once (write and rename); its path."""
    config_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = config_dir / CONFIG_FILE
    temporary = config_dir / (CONFIG_FILE + ".new")
    temporary.write_text(config.render())
    os.chmod(temporary, 0o640)
    os.replace(temporary, path)
    return path


def query(address: str, port: int, name: str, rdtype: str, timeout: float = 1.0) -> dns.message.Message:
    """One UDP query (no recursion wanted) to a DNS server; its answer (dnspython exceptions pass)."""
    message = dns.message.make_query(name, rdtype)
    message.flags &= ~dns.flags.RD
    return dns.query.udp(message, address, port=port, timeout=timeout)


class PowerDnsService:
    """One ``pdns_server`` with its configuration directory and log, owned by PID."""

    def __init__(
        self,
        config_dir: str | os.PathLike[str],
        config: PowerDnsConfig,
        log: str | os.PathLike[str],
        *,
        program: str = PDNS_SERVER,
        process: ProcessRef | None = None,
    ) -> None:
        self.config_dir = Path(_path(config_dir, "configuration directory"))
        self.config = config
        self.log = Path(log)
        self.program = program
        self.process = process

    @property
    def running(self) -> bool:
        return self.process is not None and processes.is_alive(self.process)

    def start(self, *, die_with_parent: bool = False) -> ProcessRef:
        """Write the configuration and start the server (nothing if ours already runs)."""
        if self.process is not None and processes.is_alive(self.process):
            return self.process
        write_config(self.config_dir, self.config)
        Path(self.config.socket_dir).mkdir(parents=True, exist_ok=True)
        argv = [self.program, f"--config-dir={self.config_dir}"]
        self.process = processes.spawn("pdns_server", argv, self.log, die_with_parent=die_with_parent)
        return self.process

    def wait_ready(self, zone: str | None = None, timeout: float = READY_TIMEOUT) -> float:
        """Wait until the server answers; the seconds waited.

        With ``zone`` it must answer that zone's SOA authoritatively; without, any answer
        will do (REFUSED included). PowerDnsError if the process ends or time runs out.
        """
        started = time.monotonic()
        deadline = started + timeout
        name = zone or "pvc-probe.invalid"
        last = "no answer"
        while True:
            if not self.running:
                raise PowerDnsError(f"pdns_server exited before answering{self._log_tail()}")
            try:
                answer = query(self.config.probe_address, self.config.local_port, name, "SOA", PROBE_TIMEOUT)
            except (dns.exception.DNSException, OSError) as error:
                last = str(error) or type(error).__name__
            else:
                if zone is None:
                    return time.monotonic() - started
                owner = dns.name.from_text(zone)
                soa = answer.get_rrset(answer.answer, owner, dns.rdataclass.IN, dns.rdatatype.SOA)
                if answer.rcode() == dns.rcode.NOERROR and answer.flags & dns.flags.AA and soa:
                    return time.monotonic() - started
                last = f"{dns.rcode.to_text(answer.rcode())} for {zone} SOA"
            if time.monotonic() >= deadline:
                raise PowerDnsError(
                    f"pdns_server did not answer within {timeout:.0f} s ({last}){self._log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop our server by PID (SIGTERM, then SIGKILL); True if it was running."""
        ref, self.process = self.process, None
        if ref is None or not processes.is_alive(ref):
            return False
        processes.terminate([ref], timeout)
        return True

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return " (log: " + " | ".join(text) + ")" if text else ""
