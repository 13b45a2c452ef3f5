"""A node's chassis power through its BMC, with ``ipmitool`` over IPMI v2 (lanplus).

Each call runs one ``ipmitool chassis power ...`` within a deadline. The password goes to
ipmitool in the environment (``-E`` reads ``IPMI_PASSWORD``), never on its command line,
where any user could read it in ``ps``. Every failure is one :class:`IpmiError` whose
message says what went wrong in one line and whose ``failure`` says which kind it was.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import StrEnum

from pvc import commands
from pvc.commands import CommandError
from pvc.errors import PVCError

#: The ipmitool executable (looked up on PATH).
IPMITOOL = "ipmitool"
#: Cipher suite 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128). Naming it skips ipmitool's
#: cipher-suite discovery, which some BMCs (OpenIPMI's ipmi_sim among them) do not answer,
#: costing seconds before ipmitool falls back.
CIPHER_SUITE = "3"
#: Retransmissions of each IPMI message. With one, an unanswered message costs ipmitool
#: two waits of ``-N`` seconds; never 0, which makes ipmitool use its own (long) default.
RETRIES = 1
#: Seconds of a call's timeout kept free for ipmitool to start and report.
MARGIN = 0.5
#: Characters of an unparseable answer quoted in an error.
ANSWER_QUOTE = 120
#: The longest password IPMI v2 carries (bytes).
MAX_PASSWORD = 20

_STATUS = re.compile(r"chassis power is (on|off)", re.IGNORECASE)
_CONTROL = {"off": "Down/Off", "on": "Up/On"}
#: Verbose stderr lines that mean the BMC never answered (not: refused us).
_NO_ANSWER = ("get auth capabilities error", "no response", "unable to get channel cipher suites")
#: Verbose stderr lines that mean the BMC answered and refused our credentials.
_REFUSED = ("rakp", "unauthorized name", "invalid user", "unable to read password", "password is longer")


class PowerState(StrEnum):
    """A chassis' power as its BMC reports it."""

    ON = "on"
    OFF = "off"


class IpmiFailure(StrEnum):
    """What kind of failure an :class:`IpmiError` is."""

    UNREACHABLE = "unreachable"  # no answer within the deadline
    AUTH = "authentication"  # the BMC answered and refused the user or password
    BAD_ANSWER = "bad-answer"  # ipmitool succeeded but printed something unexpected
    MISSING = "missing"  # ipmitool cannot be run
    FAILED = "failed"  # any other non-zero exit (the BMC refused the command, ...)


class IpmiError(PVCError):
    """An IPMI call failed; ``str()`` is one line, ``failure`` its kind."""

    def __init__(self, message: str, failure: IpmiFailure) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class IpmiTarget:
    """A BMC and the credential to use on it. The password never appears in its repr."""

    host: str
    user: str
    password: str = field(repr=False)
    port: int = 623

    def __post_init__(self) -> None:
        if not self.host or self.host.startswith("-") or any(c.isspace() for c in self.host):
            raise ValueError(f"not a BMC host name or address: {self.host!r}")
        if self.user.startswith("-") or any(c.isspace() or c == "\0" for c in self.user):
            raise ValueError(f"not an IPMI user name: {self.user!r}")
        if "\0" in self.password or len(self.password.encode()) > MAX_PASSWORD:
            raise ValueError(f"an IPMI password has at most {MAX_PASSWORD} bytes and no NUL")
        if not 0 < self.port < 65536:
            raise ValueError(f"not a UDP port: {self.port}")

    def describe(self) -> str:
        """``user@host:port``: the target in messages and logs."""
        return f"{self.user}@{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.describe()


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= ANSWER_QUOTE else text[:ANSWER_QUOTE] + "...")


def parse_power_status(answer: str) -> PowerState:
    """The state in ``chassis power status``'s answer: exactly ``Chassis Power is on|off``.

    Case does not matter, surrounding blank space is ignored; anything else is an
    IpmiError (BAD_ANSWER) quoting the answer.
    """
    match = _STATUS.fullmatch(answer.strip())
    if not match:
        raise IpmiError(f"answer is not 'Chassis Power is on|off': {_quote(answer)}", IpmiFailure.BAD_ANSWER)
    return PowerState(match.group(1).lower())


def check_power_control(answer: str, wanted: PowerState) -> None:
    """Check ``chassis power off|on``'s answer: ``Chassis Power Control: Down/Off|Up/On``."""
    expected = f"Chassis Power Control: {_CONTROL[wanted]}"
    if answer.strip().lower() != expected.lower():
        raise IpmiError(f"answer is not {expected!r}: {_quote(answer)}", IpmiFailure.BAD_ANSWER)


def wait_seconds(timeout: float) -> int:
    """ipmitool's ``-N`` for a call that must end within ``timeout`` seconds.

    An unanswered message costs ``(RETRIES + 1) * N`` seconds; N is whole seconds, at
    least 1 (below ``2 * 1 + MARGIN`` seconds the process deadline ends the call instead).
    """
    return max(1, int((timeout - MARGIN) // (RETRIES + 1)))


def command(target: IpmiTarget, action: str, timeout: float) -> list[str]:
    """The ipmitool command line of ``chassis power <action>`` (it holds no password)."""
    return [
        IPMITOOL, "-v", "-I", "lanplus", "-C", CIPHER_SUITE,
        "-N", str(wait_seconds(timeout)), "-R", str(RETRIES),
        "-H", target.host, "-p", str(target.port), "-U", target.user, "-E",
        "chassis", "power", action,
    ]  # fmt: skip


def _classify(stderr: str) -> tuple[IpmiFailure, str]:
    """The kind of a failure from ipmitool's verbose error output, and the line telling it."""
    for line in stderr.splitlines():
        lowered = line.strip().lower()
        if any(text in lowered for text in _NO_ANSWER):
            return IpmiFailure.UNREACHABLE, line.strip(" >")
        if any(text in lowered for text in _REFUSED):
            return IpmiFailure.AUTH, line.strip(" >")
    return IpmiFailure.FAILED, ""


def _last_line(stderr: str, stdout: str) -> str:
    lines = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _run(target: IpmiTarget, action: str, timeout: float) -> str:
    """Run ``chassis power <action>`` on ``target``; its standard output."""
    if timeout <= 0:
        raise ValueError(f"an IPMI call needs a positive timeout, not {timeout}")
    argv = command(target, action, timeout)
    env = {**os.environ, "IPMI_PASSWORD": target.password}
    where = f"IPMI {target.describe()} power {action}"
    try:
        result = commands.run(argv, timeout=timeout, env=env, accept=None)
    except CommandError as error:
        if error.reason is not None:
            raise IpmiError(f"{where}: cannot run {IPMITOOL}: {error.reason}", IpmiFailure.MISSING) from None
        raise IpmiError(
            f"{where}: no answer within {timeout:g} s (BMC unreachable?)", IpmiFailure.UNREACHABLE
        ) from None
    if result.returncode != 0:
        failure, reason = _classify(result.stderr)
        last = _last_line(result.stderr, result.stdout)
        detail = f"{reason}; {last}" if reason else last
        if failure is IpmiFailure.UNREACHABLE:
            raise IpmiError(f"{where}: BMC unreachable, no answer ({detail})", failure)
        if failure is IpmiFailure.AUTH:
            raise IpmiError(f"{where}: authentication refused ({detail})", failure)
        raise IpmiError(f"{where}: ipmitool exited with status {result.returncode}: {detail}", failure)
    return result.stdout


def _with_target(error: IpmiError, target: IpmiTarget, action: str) -> IpmiError:
    return IpmiError(f"IPMI {target.describe()} power {action}: {error}", error.failure)


def power_status(target: IpmiTarget, *, timeout: float) -> PowerState:
    """The chassis power of ``target``, asked within ``timeout`` seconds."""
    answer = _run(target, "status", timeout)
    try:
        return parse_power_status(answer)
    except IpmiError as error:
        raise _with_target(error, target, "status") from None


def _control(target: IpmiTarget, wanted: PowerState, timeout: float) -> None:
    answer = _run(target, str(wanted), timeout)
    try:
        check_power_control(answer, wanted)
    except IpmiError as error:
        raise _with_target(error, target, str(wanted)) from None


def power_off(target: IpmiTarget, *, timeout: float) -> None:
    """Switch ``target``'s chassis power off (hard, not an ACPI shutdown) within ``timeout`` s.

    Success means the BMC accepted the command; confirm with :func:`power_status`.
    """
    _control(target, PowerState.OFF, timeout)


def power_on(target: IpmiTarget, *, timeout: float) -> None:
    """Switch ``target``'s chassis power on within ``timeout`` seconds."""
    _control(target, PowerState.ON, timeout)
