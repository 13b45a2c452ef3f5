"""A made-up sysfs with SR-IOV devices, and a stand-in for ``ip`` that keeps VF settings.

The kernels the tests run on have no SR-IOV device (nor ``netdevsim``), so the tests lay out
``/sys`` as the kernel does: ``class/net/<dev>/device`` links to the PCI device, whose
``sriov_totalvfs``/``sriov_numvfs`` say what it can make and has made and whose ``virtfn<N>``
links point to the VFs' PCI devices, each with its network device under ``net/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from pvc.commands import CommandResult


def write_file(path: Path, text: str) -> None:
    """Write a sysfs attribute (with its trailing newline), making its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def add_netdev(sys: Path, name: str, device: Path | None, mtu: int, mac: str) -> None:
    """``/sys/class/net/<name>`` with its MTU, address and (for hardware) its device link."""
    entry = sys / "class" / "net" / name
    write_file(entry / "mtu", str(mtu))
    write_file(entry / "address", mac)
    if device is not None:
        (entry / "device").symlink_to(os.path.relpath(device, entry))


def vf_mac(slot: int, index: int) -> str:
    """The MAC address :func:`make_pf` gives VF ``index`` of the PF whose VFs sit at ``slot``."""
    return f"52:54:00:aa:{slot:02x}:{index:02x}"


def make_pf(
    sys: Path,
    name: str,
    pci: str,
    total: int,
    vfs: dict[int, str | None],
    mtu: int = 1500,
    slot: int = 0x10,
) -> None:
    """A PF at PCI address ``pci`` whose VFs (``{index: netdev or None}``, None: held by no network
    driver) sit on its bus at ``slot`` (functions 0-7) and the slots after it."""
    bus = sys / "devices" / "pci0000:00"
    device = bus / pci
    write_file(device / "sriov_totalvfs", str(total))
    write_file(device / "sriov_numvfs", str(len(vfs)))
    add_netdev(sys, name, device, mtu, "52:54:00:00:00:01")
    prefix = pci.rsplit(":", 1)[0]
    for index, netdev in vfs.items():
        vf_pci = f"{prefix}:{slot + index // 8:02x}.{index % 8}"
        vf_device = bus / vf_pci
        vf_device.mkdir(parents=True)
        (device / f"virtfn{index}").symlink_to(f"../{vf_pci}")
        if netdev is not None:
            own = vf_device / "net" / netdev
            write_file(own / "mtu", str(mtu))
            write_file(own / "address", vf_mac(slot, index))
            add_netdev(sys, netdev, vf_device, mtu, vf_mac(slot, index))


class FakeIpLink:
    """``ip -j link show dev <pf>``, ``ip link set dev <pf> vf <N> ...`` and ``ip link set dev <pf>
    mtu <N>`` (kept in ``mtus``) over settings it keeps.

    ``vfs`` maps a PF to its VFs' ``vfinfo_list`` entries (as iproute2 prints them); a ``set``
    changes them as the kernel would, unless its setting word is in ``refuse``. Every command
    is recorded in ``calls``.
    """

    def __init__(self, vfs: dict[str, int], refuse: Sequence[str] = ()) -> None:
        self.refuse = set(refuse)
        self.calls: list[list[str]] = []
        self.mtus: dict[str, int] = {}
        self.links = {
            pf: [
                {
                    "vf": index,
                    "address": "00:00:00:00:00:00",
                    "vlan_list": [{}],
                    "rate": {"max_tx": 0, "min_tx": 0},
                    "spoofchk": True,
                    "link_state": "auto",
                    "trust": False,
                    "query_rss_en": False,
                }
                for index in range(count)
            ]
            for pf, count in vfs.items()
        }

    def _answer(self, argv: list[str], code: int = 0, out: str = "", err: str = "") -> CommandResult[str]:
        return CommandResult(tuple(argv), code, out, err)

    def __call__(self, argv: Sequence[str]) -> CommandResult[str]:
        argv = list(argv)
        self.calls.append(argv)
        words = argv[argv.index("link") + 1 :]
        pf = words[words.index("dev") + 1]
        if pf not in self.links:
            return self._answer(argv, 1, err=f'Device "{pf}" does not exist.\n')
        if words[0] == "show":
            return self._answer(argv, out=json.dumps([{"ifname": pf, "vfinfo_list": self.links[pf]}]))
        if "vf" not in words:  # ip link set dev <pf> mtu <N>
            if "mtu" in self.refuse:
                return self._answer(argv, 2, err="Error: mtu greater than device maximum.\n")
            self.mtus[pf] = int(words[words.index("mtu") + 1])
            return self._answer(argv)
        index, setting = int(words[words.index("vf") + 1]), words[words.index("vf") + 2 :]
        if setting[0] in self.refuse:
            return self._answer(argv, 2, err="RTNETLINK answers: Operation not supported\n")
        entry = self.links[pf][index]
        values = dict(zip(setting[::2], setting[1::2], strict=True))
        if "vlan" in values:
            vlan, qos = int(values["vlan"]), int(values.get("qos", "0"))
            entry["vlan_list"] = [{k: v for k, v in (("vlan", vlan), ("qos", qos)) if v}]
        if "max_tx_rate" in values:
            entry["rate"] = {"max_tx": int(values["max_tx_rate"]), "min_tx": int(values["min_tx_rate"])}
        for word, key in (("spoofchk", "spoofchk"), ("trust", "trust"), ("query_rss", "query_rss_en")):
            if word in values:
                entry[key] = values[word] == "on"
        if "state" in values:
            entry["link_state"] = values["state"]
        return self._answer(argv)

    def settings_run(self) -> list[str]:
        """The ``set`` commands run, from ``dev`` on."""
        return [re.sub(r"^.*? dev ", "", " ".join(call)) for call in self.calls if "set" in call]
