"""SR-IOV on this host: physical functions (PFs), their virtual functions (VFs) and VF settings.

Discovery reads sysfs (``root`` is ``/sys/class/net`` unless a test points it at a tree of its
own): a PF is a network device whose ``device/sriov_totalvfs`` exists; its VFs are the PCI
devices ``device/virtfn<N>`` links to, each with a network device under ``net/`` while a
network driver holds it (a VF handed to a VM as a PCI device has none). The VF count is set
through ``device/sriov_numvfs``.

What the PF's driver applies to each VF (VLAN and QoS, transmit rates, spoof checking, trust,
link state, RSS queries) is read from ``ip -j link show dev <pf>`` (its ``vfinfo_list``) and
changed with ``ip link set dev <pf> vf <N> ...``, one command per setting, so a setting the
driver refuses does not keep the others from being applied. Every command goes through
:func:`pvc.commands.run` as an argument list (``run`` is a parameter for tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pvc import commands
from pvc.commands import CommandError, CommandResult
from pvc.errors import PVCError
from pvc.net.iproute import IP_TIMEOUT

#: Where the kernel lists network devices.
SYSFS_NET = Path("/sys/class/net")
#: The link states a VF may be given: follow the PF's link, always up, always down.
LINK_STATES = ("auto", "enable", "disable")
#: The highest VLAN id and 802.1p priority a VF may be given (VLAN 0: untagged).
VLAN_MAX = 4094
QOS_MAX = 7

Runner = Callable[[Sequence[str]], CommandResult[str]]


class SriovError(PVCError):
    """A device is not what SR-IOV needs (not a PF, too many VFs) or sysfs refused a write."""


def run_ip(argv: Sequence[str]) -> CommandResult[str]:
    """Run an ``ip`` command to completion, whatever its exit status (the caller looks at it)."""
    return commands.run(argv, timeout=IP_TIMEOUT, accept=None)


# -- what the host has ----------------------------------------------------------------------


@dataclass(frozen=True)
class VirtualFunction:
    """One VF of a PF: its index, PCI address and, while a network driver holds it, its device.

    ``name`` is the network device's name, or for a VF without one (passed to a VM as a PCI
    device) the name it had before (``known_names``), else ``<pf>v<index>``.
    """

    pf: str
    index: int
    pci: str
    name: str
    netdev: str | None = None
    mac: str = ""
    mtu: int | None = None


@dataclass(frozen=True)
class PhysicalFunction:
    """A network device that can make VFs, with how many it may make and has made."""

    name: str
    mtu: int | None
    total_vfs: int
    num_vfs: int
    vfs: tuple[VirtualFunction, ...] = ()


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def is_pf(device: str, root: Path = SYSFS_NET) -> bool:
    """Whether network device ``device`` is an SR-IOV physical function."""
    return (root / device / "device" / "sriov_totalvfs").is_file()


def discover_pfs(root: Path = SYSFS_NET) -> list[str]:
    """The names of every SR-IOV physical function, sorted."""
    try:
        devices = sorted(entry.name for entry in root.iterdir())
    except OSError:
        return []
    return [device for device in devices if is_pf(device, root)]


def _virtfn_index(link: Path) -> int | None:
    suffix = link.name.removeprefix("virtfn")
    return int(suffix) if suffix.isdigit() else None


def list_vfs(
    pf: str, root: Path = SYSFS_NET, known_names: Mapping[str, str] | None = None
) -> list[VirtualFunction]:
    """The VFs ``pf`` has now, by index; ``known_names`` maps PCI addresses to the names VFs
    had when they last had a network device (see :class:`VirtualFunction`)."""
    device = root / pf / "device"
    try:
        links = list(device.glob("virtfn*"))
    except OSError:
        return []
    found = []
    for link in links:
        index = _virtfn_index(link)
        if index is None:
            continue
        target = link.resolve()
        pci = target.name
        netdevs = (
            sorted(entry.name for entry in (target / "net").glob("*")) if (target / "net").is_dir() else []
        )
        netdev = netdevs[0] if netdevs else None
        name = netdev or (known_names or {}).get(pci) or f"{pf}v{index}"
        own = target / "net" / netdev if netdev else None
        found.append(
            VirtualFunction(
                pf=pf,
                index=index,
                pci=pci,
                name=name,
                netdev=netdev,
                mac=(_read(own / "address") or "") if own else "",
                mtu=_read_int(own / "mtu") if own else None,
            )
        )
    return sorted(found, key=lambda vf: vf.index)


def read_pf(
    pf: str, root: Path = SYSFS_NET, known_names: Mapping[str, str] | None = None
) -> PhysicalFunction:
    """A PF's MTU, VF limit and count, and its VFs; SriovError if ``pf`` is not a PF."""
    if not is_pf(pf, root):
        raise SriovError(
            f"{pf} is not an SR-IOV physical function (no {root / pf / 'device' / 'sriov_totalvfs'})"
        )
    device = root / pf / "device"
    return PhysicalFunction(
        name=pf,
        mtu=_read_int(root / pf / "mtu"),
        total_vfs=_read_int(device / "sriov_totalvfs") or 0,
        num_vfs=_read_int(device / "sriov_numvfs") or 0,
        vfs=tuple(list_vfs(pf, root, known_names)),
    )


def discover(root: Path = SYSFS_NET, known_names: Mapping[str, str] | None = None) -> list[PhysicalFunction]:
    """Every PF of this host with its VFs (from sysfs alone)."""
    return [read_pf(pf, root, known_names) for pf in discover_pfs(root)]


def set_vf_count(pf: str, count: int, root: Path = SYSFS_NET) -> bool:
    """Give ``pf`` ``count`` VFs; returns whether anything changed.

    The kernel only changes a nonzero count through zero, so a different nonzero count is
    written as 0 and then ``count``. SriovError when ``pf`` is no PF, ``count`` is out of its
    range, or the driver refuses (some keep their first count until a reboot).
    """
    if not is_pf(pf, root):
        raise SriovError(f"{pf} is not an SR-IOV physical function")
    device = root / pf / "device"
    total = _read_int(device / "sriov_totalvfs") or 0
    if not 0 <= count <= total:
        raise SriovError(f"{pf} can have 0 to {total} VFs, not {count}")
    current = _read_int(device / "sriov_numvfs") or 0
    if current == count:
        return False
    steps = [0, count] if current and count else [count]
    for value in steps:
        try:
            (device / "sriov_numvfs").write_text(f"{value}\n")
        except OSError as error:
            raise SriovError(f"cannot set {pf}'s VF count to {value}: {error.strerror or error}") from None
    return True


# -- VF settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VfSettings:
    """What the PF's driver applies to one VF; None: not known (read) or left as it is (wanted).

    Rates are in Mbit/s; a maximum of 0 means no limit. ``vlan_id`` 0 means untagged.
    """

    vlan_id: int | None = None
    vlan_qos: int | None = None
    tx_rate_min: int | None = None
    tx_rate_max: int | None = None
    spoof_check: bool | None = None
    link_state: str | None = None
    trust: bool | None = None
    query_rss: bool | None = None

    def given(self) -> dict[str, Any]:
        """The settings that are not None."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def over(self, base: VfSettings) -> VfSettings:
        """These settings where given, ``base``'s elsewhere."""
        return replace(base, **self.given())


@dataclass(frozen=True)
class VfState:
    """One VF as ``ip link show`` on its PF reports it: its MAC address and settings."""

    index: int
    mac: str = ""
    settings: VfSettings = field(default_factory=VfSettings)


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _number(value: Any, default: int | None = 0) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_vfinfo(entry: Mapping[str, Any]) -> VfState:
    """One item of ``ip -j link show``'s ``vfinfo_list``.

    ``ip`` leaves out a VLAN and a QoS of 0, prints the rates under ``rate`` (older kernels
    give only ``tx_rate``, the maximum), and prints spoof checking, trust and RSS queries only
    when the driver reports them.
    """
    vlans = entry.get("vlan_list")
    first = vlans[0] if isinstance(vlans, list) and vlans and isinstance(vlans[0], Mapping) else entry
    rate = entry.get("rate") if isinstance(entry.get("rate"), Mapping) else {}
    link_state = entry.get("link_state")
    return VfState(
        index=entry["vf"] if isinstance(entry.get("vf"), int) else -1,
        mac=str(entry.get("address") or ""),
        settings=VfSettings(
            vlan_id=_number(first.get("vlan")),
            vlan_qos=_number(first.get("qos")),
            tx_rate_min=_number(rate.get("min_tx")),
            tx_rate_max=_number(rate.get("max_tx"), _number(entry.get("tx_rate"))),
            spoof_check=_flag(entry.get("spoofchk")),
            link_state=link_state if link_state in LINK_STATES else None,
            trust=_flag(entry.get("trust")),
            query_rss=_flag(entry.get("query_rss_en")),
        ),
    )


def parse_link_show(text: str) -> dict[int, VfState]:
    """The VFs in ``ip -j link show dev <pf>``'s output, by index (none for a device without)."""
    try:
        links = json.loads(text or "[]")
    except ValueError:
        raise SriovError("ip printed something that is not JSON") from None
    found: dict[int, VfState] = {}
    for link in links if isinstance(links, list) else []:
        entries = link.get("vfinfo_list") if isinstance(link, Mapping) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, Mapping) and isinstance(entry.get("vf"), int):
                state = parse_vfinfo(entry)
                found[state.index] = state
    return found


def _ip(netns: str | None) -> list[str]:
    return ["ip", *(["-n", netns] if netns else [])]


def read_vf_states(pf: str, *, run: Runner = run_ip, netns: str | None = None) -> dict[int, VfState]:
    """What the PF's driver reports for each of its VFs, by index; SriovError if ``ip`` fails."""
    argv = [*_ip(netns), "-j", "link", "show", "dev", pf]
    try:
        result = run(argv)
    except CommandError as error:
        raise SriovError(str(error)) from None
    if result.returncode != 0:
        raise SriovError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return parse_link_show(result.stdout)


def _on(value: bool) -> str:
    return "on" if value else "off"


def vf_commands(
    pf: str, index: int, wanted: VfSettings, current: VfSettings | None = None, *, netns: str | None = None
) -> list[tuple[str, list[str]]]:
    """The ``ip`` commands that give VF ``index`` of ``pf`` the ``wanted`` settings, each with
    the setting it changes (``vlan``, ``rate``, ``spoof_check``, ``trust``, ``link_state``,
    ``query_rss``).

    Settings that are None in ``wanted`` are left alone; a VLAN and its QoS, and the two rates,
    are set together (the one not given keeps its ``current`` value, else 0). With ``current``,
    a setting it already has is left out.
    """
    now = current or VfSettings()
    base = [*_ip(netns), "link", "set", "dev", pf, "vf", str(index)]
    planned: list[tuple[str, list[str]]] = []
    if wanted.vlan_id is not None or wanted.vlan_qos is not None:
        vlan = wanted.vlan_id if wanted.vlan_id is not None else (now.vlan_id or 0)
        qos = wanted.vlan_qos if wanted.vlan_qos is not None else (now.vlan_qos or 0)
        if current is None or (vlan, qos) != (now.vlan_id, now.vlan_qos):
            planned.append(("vlan", [*base, "vlan", str(vlan), "qos", str(qos)]))
    if wanted.tx_rate_min is not None or wanted.tx_rate_max is not None:
        low = wanted.tx_rate_min if wanted.tx_rate_min is not None else (now.tx_rate_min or 0)
        high = wanted.tx_rate_max if wanted.tx_rate_max is not None else (now.tx_rate_max or 0)
        if current is None or (low, high) != (now.tx_rate_min, now.tx_rate_max):
            planned.append(("rate", [*base, "min_tx_rate", str(low), "max_tx_rate", str(high)]))
    for name, word, value in (
        ("spoof_check", "spoofchk", wanted.spoof_check),
        ("trust", "trust", wanted.trust),
        ("query_rss", "query_rss", wanted.query_rss),
    ):
        if value is not None and (current is None or getattr(now, name) != value):
            planned.append((name, [*base, word, _on(value)]))
    if wanted.link_state is not None and (current is None or now.link_state != wanted.link_state):
        planned.append(("link_state", [*base, "state", wanted.link_state]))
    return planned


@dataclass(frozen=True)
class ApplyResult:
    """What :func:`apply_vf_config` did: the settings applied and, for each refused, why."""

    applied: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def check_settings(settings: VfSettings) -> None:
    """SriovError unless every given setting is in its range (the same bounds the API checks)."""
    problems = []
    if settings.vlan_id is not None and not 0 <= settings.vlan_id <= VLAN_MAX:
        problems.append(f"VLAN {settings.vlan_id} is not 0 to {VLAN_MAX}")
    if settings.vlan_qos is not None and not 0 <= settings.vlan_qos <= QOS_MAX:
        problems.append(f"QoS {settings.vlan_qos} is not 0 to {QOS_MAX}")
    for name in ("tx_rate_min", "tx_rate_max"):
        value = getattr(settings, name)
        if value is not None and value < 0:
            problems.append(f"{name} {value} is negative")
    if settings.link_state is not None and settings.link_state not in LINK_STATES:
        problems.append(f"link state '{settings.link_state}' is not one of {', '.join(LINK_STATES)}")
    if problems:
        raise SriovError("; ".join(problems))


def apply_vf_config(
    pf: str,
    index: int,
    wanted: VfSettings,
    *,
    current: VfSettings | None = None,
    run: Runner = run_ip,
    netns: str | None = None,
) -> ApplyResult:
    """Give VF ``index`` of ``pf`` the settings of ``wanted`` that are not None.

    ``current`` (read from ``ip`` when not given; everything is applied if that read fails)
    spares the commands for settings the VF already has. Each setting is its own command: one
    the driver refuses is reported in the result's ``failed`` with ``ip``'s message and the
    others are still applied. SriovError for settings out of range (nothing is run).
    """
    check_settings(wanted)
    if current is None:
        try:
            state = read_vf_states(pf, run=run, netns=netns).get(index)
        except SriovError:
            state = None
        current = state.settings if state else None
    applied: list[str] = []
    failed: dict[str, str] = {}
    for name, argv in vf_commands(pf, index, wanted, current, netns=netns):
        try:
            result = run(argv)
        except CommandError as error:
            failed[name] = str(error)
            continue
        if result.returncode == 0:
            applied.append(name)
        else:
            failed[name] = f"{' '.join(argv)}: {result.stderr.strip() or f'exit status {result.returncode}'}"
    return ApplyResult(tuple(applied), failed)
