"""SR-IOV discovery on a sysfs tree the test builds, and VF settings through ``ip``.

This kernel has no SR-IOV (``CONFIG_PCI_IOV`` and ``netdevsim`` are not built, and modules
cannot be loaded), so discovery runs on a made-up ``/sys`` laid out as the kernel lays it out
(PF device links, ``virtfn<N>`` links to the VFs' PCI devices, their ``net/`` devices), and
the ``ip`` commands are checked through a recording runner. The last tests run the real ``ip``
in a namespace of their own, where the kernel refuses VF settings, to check how a refusal is
reported.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pvc import commands
from pvc.commands import CommandError, CommandResult
from pvc.net import sriov
from pvc.net.iproute import ip
from pvc.net.sriov import SriovError, VfSettings
from tests.sriov_sysfs import add_netdev, make_pf

# -- a sysfs tree -------------------------------------------------------------------------------


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    """Two PFs (ens1f0 with VFs 0, 1, 2 and 10, VF 2 handed to a VM as a PCI device; ens1f1 with
    none), a virtual device and a plain NIC that cannot make VFs; returns ``/sys/class/net``."""
    sys = tmp_path / "sys"
    make_pf(
        sys,
        "ens1f0",
        "0000:01:00.0",
        16,
        {0: "ens1f0v0", 1: "ens1f0v1", 2: None, 10: "ens1f0v10"},
        mtu=9000,
    )
    make_pf(sys, "ens1f1", "0000:01:00.1", 8, {}, slot=0x20)
    add_netdev(sys, "bond0", None, 1500, "52:54:00:00:00:09")
    plain = sys / "devices" / "pci0000:00" / "0000:02:00.0"
    plain.mkdir(parents=True)
    add_netdev(sys, "eno1", plain, 1500, "52:54:00:00:00:0a")
    return sys / "class" / "net"


def test_pfs_are_the_devices_that_can_make_vfs(sysfs: Path) -> None:
    assert sriov.discover_pfs(sysfs) == ["ens1f0", "ens1f1"]
    assert sriov.is_pf("ens1f0", sysfs) and not sriov.is_pf("ens1f0v0", sysfs)
    assert not sriov.is_pf("eno1", sysfs) and not sriov.is_pf("bond0", sysfs)
    assert sriov.discover_pfs(sysfs / "nowhere") == []


def test_a_pf_reads_with_its_vfs_in_index_order(sysfs: Path) -> None:
    pf = sriov.read_pf("ens1f0", sysfs)
    assert (pf.name, pf.mtu, pf.total_vfs, pf.num_vfs) == ("ens1f0", 9000, 16, 4)
    assert [vf.index for vf in pf.vfs] == [0, 1, 2, 10]
    first = pf.vfs[0]
    assert first == sriov.VirtualFunction(
        pf="ens1f0",
        index=0,
        pci="0000:01:10.0",
        name="ens1f0v0",
        netdev="ens1f0v0",
        mac="52:54:00:aa:10:00",
        mtu=9000,
    )
    assert pf.vfs[3].pci == "0000:01:11.2" and pf.vfs[3].name == "ens1f0v10"
    assert sriov.read_pf("ens1f1", sysfs).vfs == ()


def test_a_vf_without_a_network_device_keeps_its_known_name(sysfs: Path) -> None:
    unbound = sriov.list_vfs("ens1f0", sysfs)[2]
    assert (unbound.netdev, unbound.mac, unbound.mtu) == (None, "", None)
    assert unbound.name == "ens1f0v2"  # the PF's name and the index, as udev names VFs
    known = sriov.list_vfs("ens1f0", sysfs, known_names={"0000:01:10.2": "eth7"})[2]
    assert known.name == "eth7" and known.pci == "0000:01:10.2"
    # a VF with a device is named by it whatever was known
    assert sriov.list_vfs("ens1f0", sysfs, known_names={"0000:01:10.0": "old"})[0].name == "ens1f0v0"


def test_discover_reads_every_pf(sysfs: Path) -> None:
    found = sriov.discover(sysfs)
    assert [(pf.name, len(pf.vfs)) for pf in found] == [("ens1f0", 4), ("ens1f1", 0)]


def test_reading_something_that_is_no_pf_is_an_error(sysfs: Path) -> None:
    for device in ("eno1", "ens1f0v0", "missing0"):
        with pytest.raises(SriovError, match=f"{device} is not an SR-IOV physical function"):
            sriov.read_pf(device, sysfs)


def _numvfs(sysfs: Path, pf: str) -> str:
    return (sysfs / pf / "device" / "sriov_numvfs").read_text().strip()


def test_the_vf_count_changes_through_zero(sysfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[tuple[str, str]] = []
    real_write = Path.write_text

    def recording(self: Path, text: str, *args, **kwargs) -> int:
        written.append((self.parent.parent.name, text.strip()))
        return real_write(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", recording)
    assert sriov.set_vf_count("ens1f1", 3, sysfs) is True  # from 0: one write
    assert sriov.set_vf_count("ens1f0", 7, sysfs) is True  # from 4: through 0
    assert sriov.set_vf_count("ens1f0", 7, sysfs) is False  # already: no write
    assert sriov.set_vf_count("ens1f0", 0, sysfs) is True
    assert written == [("ens1f1", "3"), ("ens1f0", "0"), ("ens1f0", "7"), ("ens1f0", "0")]
    assert (_numvfs(sysfs, "ens1f0"), _numvfs(sysfs, "ens1f1")) == ("0", "3")


def test_a_vf_count_out_of_range_or_refused_is_an_error(sysfs: Path) -> None:
    with pytest.raises(SriovError, match="ens1f1 can have 0 to 8 VFs, not 9"):
        sriov.set_vf_count("ens1f1", 9, sysfs)
    with pytest.raises(SriovError, match="not -1"):
        sriov.set_vf_count("ens1f1", -1, sysfs)
    with pytest.raises(SriovError, match="eno1 is not an SR-IOV physical function"):
        sriov.set_vf_count("eno1", 1, sysfs)
    assert _numvfs(sysfs, "ens1f1") == "0"
    numvfs = sysfs / "ens1f1" / "device" / "sriov_numvfs"
    numvfs.unlink()
    numvfs.mkdir()  # a write the kernel refuses (as a driver that keeps its first count does)
    with pytest.raises(SriovError, match="cannot set ens1f1's VF count to 2"):
        sriov.set_vf_count("ens1f1", 2, sysfs)


# -- what ip reports ------------------------------------------------------------------------------

#: ``ip -j link show dev ens1f0`` of iproute2 6.x on a kernel that reports VLAN lists and rates:
#: VF 0 tagged 100 with priority 3 and rate limits, VF 1 untagged with every default (a zero
#: VLAN and QoS are left out), VF 2 of a driver that reports neither trust nor RSS queries.
LINK_SHOW = [
    {
        "ifindex": 4,
        "ifname": "ens1f0",
        "mtu": 9000,
        "address": "52:54:00:00:00:01",
        "vfinfo_list": [
            {
                "vf": 0,
                "link_type": "ether",
                "address": "52:54:00:aa:00:00",
                "broadcast": "ff:ff:ff:ff:ff:ff",
                "vlan_list": [{"vlan": 100, "qos": 3}],
                "rate": {"max_tx": 1000, "min_tx": 100},
                "spoofchk": True,
                "link_state": "enable",
                "trust": True,
                "query_rss_en": False,
            },
            {
                "vf": 1,
                "link_type": "ether",
                "address": "00:00:00:00:00:00",
                "broadcast": "ff:ff:ff:ff:ff:ff",
                "vlan_list": [{}],
                "rate": {"max_tx": 0, "min_tx": 0},
                "spoofchk": False,
                "link_state": "auto",
                "trust": False,
                "query_rss_en": True,
            },
            {"vf": 2, "address": "52:54:00:aa:00:02", "vlan": 7, "tx_rate": 50, "link_state": "disable"},
        ],
    }
]


def test_vf_states_are_read_from_the_vfinfo_list() -> None:
    states = sriov.parse_link_show(json.dumps(LINK_SHOW))
    assert sorted(states) == [0, 1, 2]
    assert states[0].mac == "52:54:00:aa:00:00"
    assert states[0].settings == VfSettings(100, 3, 100, 1000, True, "enable", True, False)
    assert states[1].settings == VfSettings(0, 0, 0, 0, False, "auto", False, True)
    # older output: the VLAN outside a list, only the maximum rate; unreported flags are unknown
    assert states[2].settings == VfSettings(7, 0, 0, 50, None, "disable", None, None)


def test_a_device_without_vfs_has_no_vf_states() -> None:
    plain = [{"ifindex": 1, "ifname": "lo", "mtu": 65536}]
    assert sriov.parse_link_show(json.dumps(plain)) == {}
    assert sriov.parse_link_show("") == {}
    with pytest.raises(SriovError, match="not JSON"):
        sriov.parse_link_show("Device does not exist")


# -- the ip commands ------------------------------------------------------------------------------

BASE = ["ip", "link", "set", "dev", "ens1f0", "vf", "3"]
EVERYTHING = VfSettings(
    vlan_id=200,
    vlan_qos=5,
    tx_rate_min=10,
    tx_rate_max=500,
    spoof_check=False,
    link_state="disable",
    trust=True,
    query_rss=True,
)


def test_every_setting_is_its_own_command() -> None:
    assert sriov.vf_commands("ens1f0", 3, EVERYTHING) == [
        ("vlan", [*BASE, "vlan", "200", "qos", "5"]),
        ("rate", [*BASE, "min_tx_rate", "10", "max_tx_rate", "500"]),
        ("spoof_check", [*BASE, "spoofchk", "off"]),
        ("trust", [*BASE, "trust", "on"]),
        ("query_rss", [*BASE, "query_rss", "on"]),
        ("link_state", [*BASE, "state", "disable"]),
    ]
    assert sriov.vf_commands("ens1f0", 3, VfSettings()) == []


def test_settings_not_given_keep_their_current_values() -> None:
    current = VfSettings(100, 3, 100, 1000, True, "enable", True, False)
    # a VLAN alone keeps its QoS; a maximum alone keeps the minimum
    assert sriov.vf_commands("ens1f0", 3, VfSettings(vlan_id=300, tx_rate_max=2000), current) == [
        ("vlan", [*BASE, "vlan", "300", "qos", "3"]),
        ("rate", [*BASE, "min_tx_rate", "100", "max_tx_rate", "2000"]),
    ]
    # without a current state the other half is 0
    assert sriov.vf_commands("ens1f0", 3, VfSettings(vlan_qos=2)) == [
        ("vlan", [*BASE, "vlan", "0", "qos", "2"])
    ]


def test_settings_the_vf_already_has_are_left_out() -> None:
    current = VfSettings(100, 3, 100, 1000, True, "enable", True, False)
    same = VfSettings(vlan_id=100, tx_rate_min=100, spoof_check=True, link_state="enable", trust=True)
    assert sriov.vf_commands("ens1f0", 3, same, current) == []
    assert sriov.vf_commands("ens1f0", 3, VfSettings(query_rss=True, trust=True), current) == [
        ("query_rss", [*BASE, "query_rss", "on"])
    ]


def test_commands_for_a_namespace_name_it() -> None:
    assert sriov.vf_commands("ens1f0", 0, VfSettings(trust=False), netns="lab1") == [
        ("trust", ["ip", "-n", "lab1", "link", "set", "dev", "ens1f0", "vf", "0", "trust", "off"])
    ]


class FakeIp:
    """Answers ``ip`` commands: ``show`` prints LINK_SHOW, settings listed in ``refuse`` fail."""

    def __init__(self, refuse: dict[str, tuple[int, str]] | None = None, show_fails: bool = False) -> None:
        self.refuse = refuse or {}
        self.show_fails = show_fails
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> CommandResult[str]:
        argv = list(argv)
        self.calls.append(argv)
        if "show" in argv:
            if self.show_fails:
                return CommandResult(tuple(argv), 1, "", 'Device "ens1f0" does not exist.\n')
            return CommandResult(tuple(argv), 0, json.dumps(LINK_SHOW), "")
        for word, outcome in self.refuse.items():
            if word in argv:
                if outcome[0] < 0:
                    raise CommandError(argv, timed_out=True, timeout=60.0)
                return CommandResult(tuple(argv), outcome[0], "", outcome[1])
        return CommandResult(tuple(argv), 0, "", "")

    def settings_run(self) -> list[str]:
        return [" ".join(call[7:]) for call in self.calls if "show" not in call]


def test_apply_reads_the_vf_and_runs_only_what_changes() -> None:
    fake = FakeIp()
    wanted = VfSettings(vlan_id=100, vlan_qos=3, trust=False, link_state="auto")
    result = sriov.apply_vf_config("ens1f0", 0, wanted, run=fake)
    assert fake.calls[0] == ["ip", "-j", "link", "show", "dev", "ens1f0"]
    assert fake.settings_run() == ["trust off", "state auto"]  # VLAN 100 QoS 3 it has
    assert result.applied == ("trust", "link_state") and result.ok


def test_a_refused_setting_is_reported_and_the_others_still_applied() -> None:
    fake = FakeIp(refuse={"trust": (2, "RTNETLINK answers: Operation not supported\n"), "state": (-1, "")})
    result = sriov.apply_vf_config("ens1f0", 3, EVERYTHING, current=VfSettings(), run=fake)
    assert [call[7] for call in fake.calls] == [
        "vlan",
        "min_tx_rate",
        "spoofchk",
        "trust",
        "query_rss",
        "state",
    ]
    assert result.applied == ("vlan", "rate", "spoof_check", "query_rss")
    assert result.failed["trust"] == (
        "ip link set dev ens1f0 vf 3 trust on: RTNETLINK answers: Operation not supported"
    )
    assert "did not finish within 60 s" in result.failed["link_state"]
    assert not result.ok


def test_apply_without_a_readable_state_applies_everything_given() -> None:
    fake = FakeIp(show_fails=True)
    result = sriov.apply_vf_config("ens1f0", 0, VfSettings(vlan_id=100, spoof_check=True), run=fake)
    assert fake.settings_run() == ["vlan 100 qos 0", "spoofchk on"]
    assert result.applied == ("vlan", "spoof_check")
    with pytest.raises(SriovError, match='"ens1f0" does not exist'):
        sriov.read_vf_states("ens1f0", run=fake)


@pytest.mark.parametrize(
    ("wanted", "words"),
    [
        (VfSettings(vlan_id=4095), "VLAN 4095 is not 0 to 4094"),
        (VfSettings(vlan_id=-1), "VLAN -1"),
        (VfSettings(vlan_qos=8), "QoS 8 is not 0 to 7"),
        (VfSettings(tx_rate_min=-5), "tx_rate_min -5 is negative"),
        (VfSettings(link_state="up"), "link state 'up' is not one of auto, enable, disable"),
    ],
)
def test_settings_out_of_range_run_nothing(wanted: VfSettings, words: str) -> None:
    fake = FakeIp()
    with pytest.raises(SriovError, match=words):
        sriov.apply_vf_config("ens1f0", 0, wanted, run=fake)
    assert fake.calls == []


# -- the real ip, in a namespace of the test's own -------------------------------------------


def _ip_netns_works() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    return commands.run(["ip", "netns", "list"], timeout=10, accept=None).returncode == 0


needs_netns = pytest.mark.skipif(not _ip_netns_works(), reason="needs root and ip netns")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pvc-sriov-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        yield name
    finally:
        ip("netns", "del", name, check=False)


@needs_netns
def test_the_real_ip_reports_no_vfs_on_a_device_without_sriov(netns: str) -> None:
    assert sriov.read_vf_states("lo", netns=netns) == {}
    with pytest.raises(SriovError, match="pvcnosuch0"):
        sriov.read_vf_states("pvcnosuch0", netns=netns)


@needs_netns
def test_the_real_kernel_refusing_vf_settings_is_reported_per_setting(netns: str) -> None:
    wanted = VfSettings(vlan_id=10, trust=True, link_state="enable")
    result = sriov.apply_vf_config("lo", 0, wanted, netns=netns)
    assert result.applied == ()
    assert sorted(result.failed) == ["link_state", "trust", "vlan"]
    assert all("not supported" in message for message in result.failed.values()), result.failed
    assert result.failed["vlan"].startswith(f"ip -n {netns} link set dev lo vf 0 vlan 10 qos 0: ")
