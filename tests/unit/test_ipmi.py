"""The IPMI power adapter against a stand-in ipmitool on PATH (the real one: tests/integration)."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvc.errors import PVCError
from pvc.power import ipmi
from pvc.power.ipmi import IpmiError, IpmiFailure, IpmiTarget, PowerState

PASSWORD = "s3cr3t-Pw"
TARGET = IpmiTarget("192.0.2.10", "admin", PASSWORD, port=6230)
REFUSED = (
    "Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\n"
    "Error: Unable to establish IPMI v2 / RMCP+ session\n"
)
SILENT = (
    "Loading IANA PEN Registry...\nGet Auth Capabilities error\n"
    "Error issuing Get Channel Authentication Capabilities request\n"
    "Error: Unable to establish IPMI v2 / RMCP+ session\n"
)

# Records its arguments (one per line) and $IPMI_PASSWORD, then prints what the test set.
FAKE = """#!/bin/sh
d=$(dirname "$0")
printf '%s\\n' "$@" > "$d/argv"
printf '%s' "${IPMI_PASSWORD-<unset>}" > "$d/password"
[ -f "$d/stdout" ] && cat "$d/stdout"
[ -f "$d/stderr" ] && cat "$d/stderr" >&2
[ -f "$d/sleep" ] && exec sleep "$(cat "$d/sleep")"
exit "$(cat "$d/rc" 2>/dev/null || echo 0)"
"""


@dataclass
class FakeIpmitool:
    """The stand-in's directory: what it answers next and what it was called with."""

    bin: Path

    def answer(self, stdout: str = "", stderr: str = "", rc: int = 0, sleep: float | None = None) -> None:
        (self.bin / "stdout").write_text(stdout)
        (self.bin / "stderr").write_text(stderr)
        (self.bin / "rc").write_text(str(rc))
        if sleep is not None:
            (self.bin / "sleep").write_text(str(sleep))

    @property
    def argv(self) -> list[str]:
        return (self.bin / "argv").read_text().splitlines()

    @property
    def password(self) -> str:
        return (self.bin / "password").read_text()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeIpmitool:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "ipmitool"
    tool.write_text(FAKE)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("IPMI_PASSWORD", raising=False)
    return FakeIpmitool(bin_dir)


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ("Chassis Power is on\n", PowerState.ON),
        ("Chassis Power is off\n", PowerState.OFF),
        ("  chassis power is OFF  \n", PowerState.OFF),
        ("CHASSIS POWER IS On", PowerState.ON),
    ],
)
def test_power_status_answers_parse(answer: str, state: PowerState) -> None:
    assert ipmi.parse_power_status(answer) is state


@pytest.mark.parametrize(
    "answer",
    ["", "\n", "Chassis Power is unknown", "Chassis Power is on\nChassis Power is off", "Power is on", "on"],
)
def test_anything_else_is_a_bad_answer_quoting_it(answer: str) -> None:
    with pytest.raises(IpmiError) as caught:
        ipmi.parse_power_status(answer)
    assert caught.value.failure is IpmiFailure.BAD_ANSWER
    assert repr(" ".join(answer.split())) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_long_bad_answer_is_quoted_truncated() -> None:
    with pytest.raises(IpmiError) as caught:
        ipmi.parse_power_status("x" * 5000)
    assert "x" * ipmi.ANSWER_QUOTE + "..." in str(caught.value)
    assert len(str(caught.value)) < ipmi.ANSWER_QUOTE + 80


def test_power_control_answers_are_checked_for_the_direction_asked() -> None:
    ipmi.check_power_control("Chassis Power Control: Down/Off\n", PowerState.OFF)
    ipmi.check_power_control("chassis power control: up/on", PowerState.ON)
    for answer, wanted in [
        ("Chassis Power Control: Up/On", PowerState.OFF),
        ("Chassis Power Control: Down/Off", PowerState.ON),
        ("", PowerState.OFF),
    ]:
        with pytest.raises(IpmiError) as caught:
            ipmi.check_power_control(answer, wanted)
        assert caught.value.failure is IpmiFailure.BAD_ANSWER


def test_the_target_never_shows_its_password() -> None:
    assert PASSWORD not in repr(TARGET)
    assert PASSWORD not in str(TARGET)
    assert str(TARGET) == TARGET.describe() == "admin@192.0.2.10:6230"
    assert IpmiTarget("bmc1", "root", "x").port == 623


@pytest.mark.parametrize(
    "fields",
    [
        {"host": ""},
        {"host": "-oProxyCommand=x"},
        {"host": "a b"},
        {"user": "-P"},
        {"port": 0},
        {"port": 70000},
        {"password": "p" * 21},
    ],
)
def test_a_target_that_could_not_be_one_is_refused(fields: dict) -> None:
    with pytest.raises(ValueError):
        IpmiTarget(**{"host": "h", "user": "u", "password": "p", **fields})


def test_the_password_goes_in_the_environment_never_in_argv(fake: FakeIpmitool) -> None:
    fake.answer("Chassis Power is on\n")
    assert ipmi.power_status(TARGET, timeout=5) is PowerState.ON
    assert fake.password == PASSWORD
    assert not any(PASSWORD in word for word in fake.argv)
    assert "-P" not in fake.argv and "-E" in fake.argv
    argv = fake.argv
    pairs = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("-")}
    assert pairs["-I"] == "lanplus" and pairs["-C"] == "3"
    assert (pairs["-H"], pairs["-p"], pairs["-U"]) == ("192.0.2.10", "6230", "admin")
    assert argv[-3:] == ["chassis", "power", "status"]


def test_off_and_on_send_their_command_and_check_the_answer(fake: FakeIpmitool) -> None:
    fake.answer("Chassis Power Control: Down/Off\n")
    ipmi.power_off(TARGET, timeout=5)
    assert fake.argv[-3:] == ["chassis", "power", "off"]
    fake.answer("Chassis Power Control: Up/On\n")
    ipmi.power_on(TARGET, timeout=5)
    assert fake.argv[-3:] == ["chassis", "power", "on"]
    fake.answer("Chassis Power Control: Up/On\n")
    with pytest.raises(IpmiError) as caught:
        ipmi.power_off(TARGET, timeout=5)
    assert caught.value.failure is IpmiFailure.BAD_ANSWER
    assert str(caught.value).startswith("IPMI admin@192.0.2.10:6230 power off: ")


def test_a_refused_credential_is_an_authentication_error(fake: FakeIpmitool) -> None:
    fake.answer(stderr=REFUSED, rc=1)
    with pytest.raises(IpmiError) as caught:
        ipmi.power_status(TARGET, timeout=5)
    assert caught.value.failure is IpmiFailure.AUTH
    message = str(caught.value)
    assert "authentication refused" in message and "Unable to establish IPMI v2 / RMCP+ session" in message
    assert "(RAKP 2 HMAC is invalid; Error: " in message
    assert "\n" not in message and PASSWORD not in message


def test_a_bmc_that_never_answers_is_unreachable(fake: FakeIpmitool) -> None:
    fake.answer(stderr=SILENT, rc=1)
    with pytest.raises(IpmiError) as caught:
        ipmi.power_off(TARGET, timeout=5)
    assert caught.value.failure is IpmiFailure.UNREACHABLE
    assert "unreachable" in str(caught.value) and "(Get Auth Capabilities error; Error: " in str(caught.value)


def test_another_failure_ends_with_stderrs_last_line(fake: FakeIpmitool) -> None:
    fake.answer(stderr="Loading...\nSet Chassis Power Control to Down/Off failed: Unspecified error\n", rc=1)
    with pytest.raises(IpmiError) as caught:
        ipmi.power_off(TARGET, timeout=5)
    assert caught.value.failure is IpmiFailure.FAILED
    assert isinstance(caught.value, PVCError)
    assert str(caught.value) == (
        "IPMI admin@192.0.2.10:6230 power off: ipmitool exited with status 1: "
        "Set Chassis Power Control to Down/Off failed: Unspecified error"
    )


def test_a_call_that_outlives_its_timeout_is_ended_and_unreachable(fake: FakeIpmitool) -> None:
    fake.answer(sleep=30)
    began = time.monotonic()
    with pytest.raises(IpmiError) as caught:
        ipmi.power_status(TARGET, timeout=0.5)
    assert time.monotonic() - began < 3
    assert caught.value.failure is IpmiFailure.UNREACHABLE
    assert "no answer within 0.5 s" in str(caught.value)


def test_a_missing_ipmitool_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(IpmiError) as caught:
        ipmi.power_on(TARGET, timeout=5)
    assert caught.value.failure is IpmiFailure.MISSING
    assert "cannot run ipmitool" in str(caught.value)


@pytest.mark.parametrize("timeout", [2.5, 3, 4.6, 5, 10, 30.5])
def test_ipmitools_own_retries_end_within_the_timeout(timeout: float) -> None:
    waits = ipmi.wait_seconds(timeout)
    assert waits >= 1
    assert (ipmi.RETRIES + 1) * waits + ipmi.MARGIN <= timeout
    assert (ipmi.RETRIES + 1) * (waits + 1) + ipmi.MARGIN > timeout  # and uses what it may


def test_a_short_timeout_still_waits_a_second_for_each_message() -> None:
    assert ipmi.wait_seconds(0.5) == 1


def test_a_call_needs_a_positive_timeout() -> None:
    with pytest.raises(ValueError):
        ipmi.power_status(TARGET, timeout=0)
