"""FRR (zebra + bgpd) on this node, for the managed client networks' BGP EVPN.

:class:`FrrService` writes the configuration that :mod:`pvc.net.frr_config` renders,
starts zebra and then bgpd in the foreground as processes it owns by PID
(:mod:`pvc.processes`), with every socket, pid file and log in one directory, and asks
them for their state through ``vtysh`` (:mod:`pvc.commands`).

A node daemon that restarts finds the daemons it started before (their references are
kept in the directory) and adopts them instead of cutting every BGP session. FRR drops
root for its own user, which also clears any parent-death signal: zebra and bgpd keep
routing while the node daemon is away, and :meth:`FrrService.stop` is what ends them.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pvc import commands, processes
from pvc.commands import CommandError
from pvc.errors import PVCError
from pvc.net.frr_config import FrrParams, prefix_change_commands, render_bgpd, render_zebra
from pvc.processes import ProcessRef

ZEBRA = "/usr/lib/frr/zebra"
BGPD = "/usr/lib/frr/bgpd"
VTYSH = "vtysh"
#: The user and group FRR's daemons run as; they must own the directory.
FRR_USER = "frr"
FRR_GROUP = "frr"
#: Seconds a daemon may take to open its sockets after it starts.
START_TIMEOUT = 15.0
#: Seconds a daemon may take to end on SIGTERM before it is killed.
STOP_TIMEOUT = 10.0
#: Seconds a vtysh command may take.
VTYSH_TIMEOUT = 15.0
#: Lines of a daemon's log quoted when it fails to start.
LOG_TAIL_LINES = 5
#: The file in the directory that names the daemons this service started.
PROCESSES_FILE = "processes.json"
#: The BGP state of a session that carries routes.
ESTABLISHED = "Established"


class FrrError(PVCError):
    """FRR could not be configured, started or asked: the message says which and why."""


class Reload(enum.Enum):
    """What :meth:`FrrService.reload` had to do."""

    STARTED = "started"  # both daemons started
    UNCHANGED = "unchanged"  # the rendered configuration is the one running
    WRITTEN = "written"  # FRR is not running: the files are written for its next start
    PREFIXES = "prefixes"  # only the announced prefixes changed: applied to the running bgpd
    BGPD_RESTARTED = "bgpd restarted"  # bgpd's configuration changed otherwise
    RESTARTED = "restarted"  # zebra's configuration changed: both daemons started again


@dataclass(frozen=True)
class BgpPeer:
    """One BGP EVPN session as bgpd reports it."""

    address: str
    state: str
    hostname: str | None
    dynamic: bool
    uptime_ms: int
    prefixes_received: int | None

    @property
    def established(self) -> bool:
        return self.state == ESTABLISHED


@dataclass(frozen=True)
class FrrStatus:
    """bgpd's EVPN view: its identity and its sessions, by peer address."""

    router_id: str
    asn: int
    peers: dict[str, BgpPeer]

    @property
    def established(self) -> tuple[str, ...]:
        """The addresses of the peers whose session is up, sorted."""
        return tuple(sorted(address for address, peer in self.peers.items() if peer.established))


@dataclass(frozen=True)
class EvpnVni:
    """A VXLAN network identifier zebra advertises, and the remote tunnel ends it knows for it."""

    vni: int
    kind: str
    vxlan_interface: str
    remote_vteps: tuple[str, ...]
    macs: int


def parse_summary(data: dict) -> FrrStatus:
    """:class:`FrrStatus` from ``show bgp l2vpn evpn summary json`` (FRR 8.4's keys)."""
    peers = {
        address: BgpPeer(
            address=address,
            state=str(peer.get("state", "")),
            hostname=peer.get("hostname"),
            dynamic=bool(peer.get("dynamicPeer", False)),
            uptime_ms=int(peer.get("peerUptimeMsec", 0)),
            prefixes_received=peer.get("pfxRcd"),
        )
        for address, peer in data.get("peers", {}).items()
    }
    return FrrStatus(router_id=str(data.get("routerId", "")), asn=int(data.get("as", 0)), peers=peers)


def parse_vnis(data: dict) -> dict[int, EvpnVni]:
    """VNIs by number from ``show evpn vni json`` (FRR 8.4's keys)."""
    vnis = {}
    for item in data.values():
        vteps = item.get("remoteVteps", [])
        vnis[int(item["vni"])] = EvpnVni(
            vni=int(item["vni"]),
            kind=str(item.get("type", "")),
            vxlan_interface=str(item.get("vxlanIf", "")),
            remote_vteps=tuple(sorted(vteps)) if isinstance(vteps, list) else (),
            macs=int(item.get("numMacs", 0)),
        )
    return vnis


class FrrService:
    """zebra and bgpd for one node, configured from :class:`FrrParams`.

    ``netns`` runs the daemons in that network namespace (through ``ip netns exec``, which
    keeps the PID) for a process that is not itself in the node's namespace, as tests are.
    ``user`` and ``group`` are FRR's; ``zebra``, ``bgpd`` and ``vtysh`` its programs.
    """

    def __init__(
        self,
        params: FrrParams,
        *,
        netns: str | None = None,
        user: str = FRR_USER,
        group: str = FRR_GROUP,
        zebra: str = ZEBRA,
        bgpd: str = BGPD,
        vtysh: str = VTYSH,
    ) -> None:
        self.params = params
        self.netns = netns
        self.user = user
        self.group = group
        self.programs = {"zebra": zebra, "bgpd": bgpd}
        self.vtysh_program = vtysh
        self.directory = Path(params.directory)
        self.refs: dict[str, ProcessRef] = {}

    # -- files -----------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """A file in the service's directory."""
        return self.directory / name

    def _prepare_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.directory.chmod(0o750)
            shutil.chown(self.directory, self.user, self.group)
        except (OSError, LookupError) as error:
            raise FrrError(f"cannot prepare FRR's directory {self.directory}: {error}") from None

    def check_config(self, text: str) -> None:
        """Have vtysh parse ``text`` without applying it (``vtysh -C``); FrrError if it refuses."""
        with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="check-") as file:
            file.write(text)
            file.flush()
            try:
                commands.run([self.vtysh_program, "-C", "-f", file.name], timeout=VTYSH_TIMEOUT)
            except CommandError as error:
                reason = error.tail(LOG_TAIL_LINES)
                raise FrrError(f"FRR refuses the rendered configuration: {reason}") from None

    def _write(self, name: str, text: str) -> None:
        """Replace a file in the directory at once (a reader never sees half of it)."""
        target = self.path(name)
        temporary = target.with_name(f".{name}.new")
        temporary.write_text(text)
        temporary.chmod(0o640)
        shutil.chown(temporary, self.user, self.group)
        os.replace(temporary, target)

    def _read(self, name: str) -> str | None:
        try:
            return self.path(name).read_text()
        except FileNotFoundError:
            return None

    def rendered(self) -> dict[str, str]:
        """The configuration files for the current parameters, by file name."""
        return {"zebra.conf": render_zebra(self.params), "bgpd.conf": render_bgpd(self.params)}

    def _check(self, files: dict[str, str]) -> None:
        for text in files.values():
            self.check_config(text)

    def _store(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            self._write(name, text)

    # -- processes -------------------------------------------------------------------

    def _argv(self, daemon: str) -> list[str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [
            *prefix,
            self.programs[daemon],
            "-u", self.user, "-g", self.group,
            "-f", str(self.path(f"{daemon}.conf")),
            "-i", str(self.path(f"{daemon}.pid")),
            "-z", str(self.path("zserv.api")),
            "--vty_socket", str(self.directory),
            "-P", "0",
        ]  # fmt: skip

    def _save_refs(self) -> None:
        data = {name: ref.to_json() for name, ref in self.refs.items()}
        self._write(PROCESSES_FILE, json.dumps(data))

    def _load_refs(self) -> dict[str, ProcessRef]:
        text = self._read(PROCESSES_FILE)
        if not text:
            return {}
        try:
            return {name: ProcessRef.from_json(ref) for name, ref in json.loads(text).items()}
        except (ValueError, TypeError):
            return {}

    def _wait_for(self, ready: Callable[[], bool], ref: ProcessRef, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if not processes.is_alive(ref):
                raise FrrError(f"{ref.name} ended at start: {self._log_tail(ref)}")
            if time.monotonic() > deadline:
                raise FrrError(f"{ref.name} did not open {what} within {START_TIMEOUT:.0f} s")
            time.sleep(0.02)

    def _log_tail(self, ref: ProcessRef) -> str:
        try:
            lines = Path(ref.log).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"

    def _socket(self, name: str) -> Callable[[], bool]:
        return lambda: self.path(name).is_socket()

    def _start_daemon(self, daemon: str, ready_socket: str) -> None:
        # Sockets left by an earlier run would make the wait below end at once.
        self.path(ready_socket).unlink(missing_ok=True)
        if daemon == "zebra":
            self.path("zserv.api").unlink(missing_ok=True)
        ref = processes.spawn(daemon, self._argv(daemon), self.path(f"{daemon}.log"))
        self.refs[daemon] = ref
        self._save_refs()
        try:
            self._wait_for(self._socket(ready_socket), ref, ready_socket)
        except FrrError:
            processes.terminate([ref], timeout=STOP_TIMEOUT)
            del self.refs[daemon]
            self._save_refs()
            raise

    def _stop_daemon(self, daemon: str) -> None:
        ref = self.refs.pop(daemon, None)
        if ref is not None:
            processes.terminate([ref], timeout=STOP_TIMEOUT)
            self._save_refs()

    def _start_bgpd(self) -> None:
        self._start_daemon("bgpd", "bgpd.vty")

    def is_running(self) -> bool:
        """True while both daemons this service started are alive."""
        return all(name in self.refs and processes.is_alive(self.refs[name]) for name in self.programs)

    def start(self) -> Reload:
        """Write the configuration and start zebra, then bgpd once zebra's API socket is open.

        Daemons this service started earlier (recorded in its directory) that are both
        still alive are adopted and brought to the current configuration (the answer is
        then :meth:`reload`'s); a lone survivor is stopped first.
        FrrError if a daemon ends or opens no socket within :data:`START_TIMEOUT`.
        """
        self._prepare_directory()
        self.refs = {name: ref for name, ref in self._load_refs().items() if processes.is_alive(ref)}
        if self.is_running():
            return self.reload(self.params)
        self.stop()
        files = self.rendered()
        self._check(files)
        self._store(files)
        try:
            self._start_daemon("zebra", "zserv.api")
            self._start_bgpd()
        except FrrError:
            self.stop()
            raise
        return Reload.STARTED

    def stop(self) -> None:
        """End bgpd (it tells its peers, who withdraw this node's routes at once), then zebra."""
        for daemon in ("bgpd", "zebra"):
            self._stop_daemon(daemon)

    def reload(self, params: FrrParams) -> Reload:
        """Bring FRR to ``params`` with as little disruption as the change allows.

        Unchanged text does nothing. A change of the announced prefixes alone is applied
        to the running bgpd through vtysh (no session drops). Any other change of
        bgpd.conf restarts bgpd (its sessions drop and come back within the connect
        timer); a change of zebra.conf restarts both. A configuration FRR refuses is an
        FrrError and changes nothing. The directory cannot change.
        """
        if params.directory != self.params.directory:
            raise FrrError(f"FRR's directory is {self.params.directory}, not {params.directory}")
        files = {"zebra.conf": render_zebra(params), "bgpd.conf": render_bgpd(params)}
        old = {name: self._read(name) for name in files}
        running = self.is_running()
        if running and old == files:
            self.params = params
            return Reload.UNCHANGED
        self._check(files)
        self.params = params
        if not running:
            self._prepare_directory()
            self._store(files)
            return Reload.WRITTEN
        if old["zebra.conf"] != files["zebra.conf"]:
            self.stop()
            self._store(files)
            self._start_daemon("zebra", "zserv.api")
            self._start_bgpd()
            return Reload.RESTARTED
        change = prefix_change_commands(old["bgpd.conf"] or "", files["bgpd.conf"])
        if change is not None:
            try:
                self.vtysh(*change)
            except FrrError:
                pass  # the restart below applies the file, whatever bgpd made of the commands
            else:
                self._store(files)
                return Reload.PREFIXES
        self._stop_daemon("bgpd")
        self._store(files)
        self._start_bgpd()
        return Reload.BGPD_RESTARTED

    # -- questions -------------------------------------------------------------------

    def vtysh(self, *lines: str) -> str:
        """Run vtysh commands (``-c`` each, in order) against this node's daemons; their output."""
        argv: list[str] = [self.vtysh_program, "--vty_socket", str(self.directory)]
        for line in lines:
            argv += ["-c", line]
        try:
            return commands.run(argv, timeout=VTYSH_TIMEOUT).stdout
        except CommandError as error:
            raise FrrError(f"vtysh {' / '.join(lines)}: {error.tail(LOG_TAIL_LINES)}") from None

    def _json(self, command: str) -> dict:
        text = self.vtysh(command)
        try:
            data = json.loads(text or "{}")
        except ValueError:
            raise FrrError(f"vtysh {command}: not JSON: {text[:200]!r}") from None
        if not isinstance(data, dict):
            raise FrrError(f"vtysh {command}: expected an object, got {type(data).__name__}")
        return data

    def status(self) -> FrrStatus:
        """bgpd's EVPN sessions (``show bgp l2vpn evpn summary json``); FrrError if it cannot answer."""
        return parse_summary(self._json("show bgp l2vpn evpn summary json"))

    def evpn_vnis(self) -> dict[int, EvpnVni]:
        """The VNIs zebra advertises with their remote VTEPs (``show evpn vni json``)."""
        return parse_vnis(self._json("show evpn vni json"))
