"""The lab's BMCs: one OpenIPMI ``ipmi_sim`` per lab node, answering IPMI v2 (lanplus).

Each simulated BMC listens on its own UDP port and switches its node's power through a
*power script* that ipmi_sim runs for every chassis request. The script keeps the node's
power state in a file (``1`` on, ``0`` off), appends every call to a log shared by all the
BMCs (``<epoch seconds> <node> <op> <args...>``) and, before it records a new state, runs
an optional hook command with ``<node> off|on`` appended, which may really stop or start
the node. ipmi_sim waits for the script, and so does the IPMI client: a hook must end
well within the client's per-message wait (ipmitool's ``-N``), or the client reports a
failure although the change goes on. A failing hook makes the request fail (the state is
left as it was).

Layout under the directory::

    bmcs.json              what was started (PIDs): lets another process stop them (0600)
    calls.log              every power-script call of every BMC
    <node>/lan.conf        ipmi_sim's configuration, with the password (0600)
    <node>/bmc.emu         its emulated management controller
    <node>/power.sh        the power script
    <node>/power           the node's power state
    <node>/hook.log        the hook's output
    <node>/ipmi_sim.log    ipmi_sim's own output
    <node>/state/          ipmi_sim's persistent state
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pvc import commands, processes
from pvc.commands import CommandError
from pvc.errors import PVCError
from pvc.power import ipmi
from pvc.power.ipmi import IpmiError, IpmiTarget, PowerState
from pvc.processes import ProcessRef

IPMI_SIM = "ipmi_sim"
#: The BMC user the lab's fencing logs in as.
ADMIN_USER = "admin"
#: ipmi_sim keeps at most this many characters of a user's password.
MAX_SIM_PASSWORD = 16
#: Seconds a readiness probe (one ``power status``) may take.
PROBE_TIMEOUT = 3.0
#: Names and passwords that can stand in ipmi_sim's configuration and a shell script as they are.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PASSWORD = re.compile(r"[A-Za-z0-9_.+=@%:,-]+")
_PATH = re.compile(r"[A-Za-z0-9_./+=@%:,-]+")

EMULATION = """\
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_setbmc 0x20
sel_enable 0x20 1000 0x0a
mc_enable 0x20
"""


class BmcError(PVCError):
    """A simulated BMC could not be set up, started or found."""


@dataclass(frozen=True)
class CallRecord:
    """One call of a node's power script, as ipmi_sim made it."""

    time: float  # epoch seconds
    node: str
    op: str  # "get" or "set"
    args: tuple[str, ...]  # e.g. ("power", "0")


def parse_call(line: str) -> CallRecord:
    """One line of the call log: ``<epoch seconds> <node> <op> <args...>``."""
    words = line.split()
    if len(words) < 3:
        raise ValueError(f"not a power-script call: {line!r}")
    return CallRecord(float(words[0]), words[1], words[2], tuple(words[3:]))


def read_calls(path: Path) -> list[CallRecord]:
    """Every call recorded in the call log at ``path``, oldest first ([] if there is none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [parse_call(line) for line in text.splitlines() if line.strip()]


def lan_conf(node: str, address: str, port: int, user: str, password: str, script: Path) -> str:
    """ipmi_sim's configuration for ``node``'s BMC: one LAN channel, one admin user."""
    guid = uuid.uuid4().hex
    auths = "none md2 md5 straight"
    return "\n".join(
        [
            f'name "{node}"',
            "set_working_mc 0x20",
            "  startlan 1",
            f"    addr {address} {port}",
            "    priv_limit admin",
            *(f"    allowed_auths_{level} {auths}" for level in ("callback", "user", "operator", "admin")),
            f"    guid {guid}",
            "  endlan",
            f'  chassis_control "{script} {node}"',
            f'  user 2 true "{user}" "{password}" admin 10 {auths}',
            "",
        ]
    )


def power_script(state: Path, calls: Path, hook_log: Path, hook_argv: Sequence[str] | None) -> str:
    """The power script ipmi_sim runs as ``power.sh <node> get power [boot]`` or ``... set <what> <value>``.

    ``set power 0|1`` and ``set shutdown 1`` run the hook (``off``/``on``) and then record the
    state; ``set reset 1`` of a node that is on runs the hook with ``off`` then ``on``.
    """
    hook = " ".join(shlex.quote(word) for word in hook_argv) if hook_argv else ""
    run_hook = (
        f'hook() {{ {hook} "$node" "$1" >> {shlex.quote(str(hook_log))} 2>&1 || exit 1; }}'
        if hook
        else "hook() { :; }"
    )
    return f"""#!/bin/sh
# The power of one lab node, for OpenIPMI's ipmi_sim (written by pvc.lab.bmc).
node=$1; op=$2; shift 2
state={shlex.quote(str(state))}
echo "$(date +%s.%N) $node $op $*" >> {shlex.quote(str(calls))}
[ -f "$state" ] || echo 1 > "$state"
{run_hook}
record() {{ echo "$1" > "$state.new" && mv "$state.new" "$state"; }}
case $op in
get)
    for what in "$@"; do
        case $what in
        power) echo "power:$(cat "$state")" ;;
        boot) echo "boot:none" ;;
        esac
    done ;;
set)
    while [ $# -ge 2 ]; do
        case $1:$2 in
        power:0 | shutdown:1) hook off; record 0 ;;
        power:1) hook on; record 1 ;;
        reset:1) if [ "$(cat "$state")" = 1 ]; then hook off; hook on; fi ;;
        power:*) exit 1 ;;
        esac
        shift 2
    done ;;
esac
exit 0
"""


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def udp_port_bound(port: int) -> bool:
    """True if some socket in this network namespace is bound to UDP ``port``."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as file:
            next(file, None)
            for line in file:
                local = line.split()[1]
                if int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


class BmcSim:
    """Simulated BMCs of lab nodes, each an ``ipmi_sim`` on ``address``:its port.

    ``nodes`` is a list of (node name, UDP port). Every BMC has one user, ``user``, with
    ``password`` (at most 16 characters, ipmi_sim's limit). ``hook_argv``, if given, is run
    as ``hook_argv + [node, "off"|"on"]`` on every power change (see the module's help).
    """

    def __init__(
        self,
        directory: Path,
        address: str,
        nodes: Sequence[tuple[str, int]],
        *,
        password: str,
        user: str = ADMIN_USER,
        hook_argv: Sequence[str] | None = None,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.address = address
        self.nodes = [(str(name), int(port)) for name, port in nodes]
        self.user = user
        self._password = password
        self.hook_argv = list(hook_argv) if hook_argv else None
        self.refs: dict[str, ProcessRef] = {}
        self._check()

    def _check(self) -> None:
        names = [name for name, _ in self.nodes]
        if not names or len(set(names)) != len(names) or len({p for _, p in self.nodes}) != len(names):
            raise BmcError("BMCs need nodes with distinct names and distinct ports")
        for name, port in self.nodes:
            if not _NAME.fullmatch(name):
                raise BmcError(f"not a node name for a BMC: {name!r}")
            if not 0 < port < 65536:
                raise BmcError(f"not a UDP port for {name}'s BMC: {port}")
        if not _NAME.fullmatch(self.user) or not _NAME.fullmatch(self.address.replace(":", "")):
            raise BmcError(f"not a BMC user and address: {self.user!r} {self.address!r}")
        if not _PASSWORD.fullmatch(self._password) or len(self._password) > MAX_SIM_PASSWORD:
            raise BmcError(f"a BMC password has 1-{MAX_SIM_PASSWORD} letters, digits or _.+=@%:,-")
        if not _PATH.fullmatch(str(self.directory)):
            raise BmcError(f"the BMCs' directory needs a plain path (no blanks, quotes): {self.directory}")

    # -- files ----------------------------------------------------------------------------

    @property
    def calls_log(self) -> Path:
        """The call log shared by the BMCs' power scripts."""
        return self.directory / "calls.log"

    @property
    def record_file(self) -> Path:
        """What was started, for :meth:`attach`."""
        return self.directory / "bmcs.json"

    def node_dir(self, node: str) -> Path:
        """The files of ``node``'s BMC."""
        self.port(node)
        return self.directory / node

    def power_file(self, node: str) -> Path:
        """The file holding ``node``'s power state (``1`` on, ``0`` off)."""
        return self.node_dir(node) / "power"

    def port(self, node: str) -> int:
        """The UDP port of ``node``'s BMC."""
        for name, port in self.nodes:
            if name == node:
                return port
        raise BmcError(f"no BMC for node {node!r}")

    def target(self, node: str) -> IpmiTarget:
        """How to reach ``node``'s BMC with :mod:`pvc.power.ipmi`."""
        return IpmiTarget(self.address, self.user, self._password, port=self.port(node))

    def write(self) -> None:
        """Write every BMC's configuration and power script; a node's power starts on."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for node, port in self.nodes:
            base = self.node_dir(node)
            (base / "state").mkdir(parents=True, exist_ok=True)
            script = base / "power.sh"
            script.write_text(power_script(base / "power", self.calls_log, base / "hook.log", self.hook_argv))
            script.chmod(0o755)
            conf = lan_conf(node, self.address, port, self.user, self._password, script)
            _write_private(base / "lan.conf", conf)
            (base / "bmc.emu").write_text(EMULATION)
            if not self.power_file(node).exists():
                self.set_power(node, PowerState.ON)

    def set_power(self, node: str, state: PowerState) -> None:
        """Set ``node``'s recorded power state directly (no hook, no call logged)."""
        path = self.power_file(node)
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name("power.new")
        staged.write_text("1\n" if state is PowerState.ON else "0\n")
        staged.replace(path)

    def power(self, node: str) -> PowerState:
        """``node``'s recorded power state."""
        text = self.power_file(node).read_text().strip()
        if text not in ("0", "1"):
            raise BmcError(f"{node}'s power state file holds {text!r}, not 0 or 1")
        return PowerState.ON if text == "1" else PowerState.OFF

    def calls(self, node: str | None = None) -> list[CallRecord]:
        """The power-script calls so far (of ``node`` only, if given), oldest first."""
        return [call for call in read_calls(self.calls_log) if node is None or call.node == node]

    # -- processes ------------------------------------------------------------------------

    def command(self, node: str, *, daemon: bool = True) -> list[str]:
        """ipmi_sim's command line for ``node``'s BMC (``-n``: keep running when stdin ends)."""
        base = self.node_dir(node)
        conf, emulation, state = base / "lan.conf", base / "bmc.emu", base / "state"
        argv = [IPMI_SIM, "-c", str(conf), "-f", str(emulation), "-s", str(state)]
        return [*argv, "-n"] if daemon else argv

    def start(self, timeout: float = 15.0) -> None:
        """Write the files, start every BMC and wait until each answers ``power status``."""
        if any(processes.is_alive(ref) for ref in self.refs.values()):
            raise BmcError(f"the BMCs under {self.directory} are already running")
        self.write()
        self.refs = {}
        try:
            for node, _ in self.nodes:
                log = self.node_dir(node) / "ipmi_sim.log"
                self.refs[node] = processes.spawn(f"ipmi_sim-{node}", self.command(node), log)
            self._save()
            deadline = time.monotonic() + timeout
            for node, _ in self.nodes:
                self._wait_ready(node, deadline)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, node: str, deadline: float) -> None:
        """Wait until ``node``'s ipmi_sim has bound its port and answers ``power status``."""
        ref, port = self.refs[node], self.port(node)
        while True:
            if not processes.is_alive(ref):
                raise BmcError(f"ipmi_sim of {node} exited at start: {self._diagnose(node)}")
            problem = f"ipmi_sim of {node} did not open UDP port {port}"
            if udp_port_bound(port):
                try:
                    ipmi.power_status(self.target(node), timeout=PROBE_TIMEOUT)
                    return
                except IpmiError as error:
                    problem = f"the BMC of {node} does not answer: {error}"
            if time.monotonic() > deadline:
                raise BmcError(problem)
            time.sleep(0.02)

    def _diagnose(self, node: str) -> str:
        """ipmi_sim reports configuration errors only before it detaches: run it again to read them."""
        try:
            result = commands.run(self.command(node, daemon=False), timeout=5, accept=None)
        except CommandError as error:
            return str(error)
        return commands.output_tail(result.stderr, result.stdout, 3) or f"exit status {result.returncode}"

    def _save(self) -> None:
        record = {
            "address": self.address,
            "user": self.user,
            "password": self._password,
            "nodes": self.nodes,
            "hook_argv": self.hook_argv,
            "processes": {node: ref.to_json() for node, ref in self.refs.items()},
        }
        _write_private(self.record_file, json.dumps(record, indent=2) + "\n")

    @classmethod
    def attach(cls, directory: Path) -> BmcSim:
        """The BMCs started under ``directory`` (by this or another process), to stop or inspect."""
        try:
            record = json.loads((Path(directory) / "bmcs.json").read_text())
        except (OSError, ValueError) as error:
            raise BmcError(f"no BMCs recorded under {directory}: {error}") from None
        sim = cls(
            directory,
            record["address"],
            [tuple(pair) for pair in record["nodes"]],
            password=record["password"],
            user=record["user"],
            hook_argv=record["hook_argv"],
        )
        sim.refs = {node: ProcessRef.from_json(ref) for node, ref in record["processes"].items()}
        return sim

    def pids(self) -> dict[str, int]:
        """The PID of each running BMC, by node."""
        return {node: ref.pid for node, ref in self.refs.items() if processes.is_alive(ref)}

    def _ref(self, node: str) -> ProcessRef:
        ref = self.refs.get(node)
        if ref is None or not processes.is_alive(ref):
            raise BmcError(f"the BMC of {node} is not running")
        return ref

    def pause(self, node: str) -> None:
        """Freeze ``node``'s BMC (SIGSTOP): IPMI calls to it get no answer until :meth:`resume`."""
        processes.send(self._ref(node), signal.SIGSTOP)

    def resume(self, node: str) -> None:
        """Let a paused BMC answer again (SIGCONT)."""
        processes.send(self._ref(node), signal.SIGCONT)

    def stop(self) -> None:
        """End every BMC this object started (or attached to), by PID."""
        refs = list(self.refs.values())
        for ref in refs:
            processes.send(ref, signal.SIGCONT)  # a paused BMC must run to act on SIGTERM
        processes.terminate(refs, timeout=5.0)
        self.refs = {}
        if self.record_file.exists():
            self._save()
