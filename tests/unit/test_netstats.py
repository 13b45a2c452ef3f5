"""Network device figures from sysfs (a fake tree, and the real loopback device)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pvc.config import NetworksSection
from pvc.node import sysinfo
from pvc.node.netstats import SYSFS_NET, InterfaceSampler, read_device
from tests.helpers import ManualClock

UNKNOWN_RATES = dict.fromkeys(("rx_bps", "tx_bps", "rx_pps", "tx_pps", "total_bps", "total_pps"), "N/A")


def fake_device(root: Path, name: str, *, speed: str | None = "1000", **counters: int) -> Path:
    base = root / name
    (base / "statistics").mkdir(parents=True, exist_ok=True)
    (base / "operstate").write_text("up\n")
    (base / "mtu").write_text("9000\n")
    if speed is not None:
        (base / "speed").write_text(f"{speed}\n")
    set_counters(root, name, **({"rx_bytes": 0, "tx_bytes": 0, "rx_packets": 0, "tx_packets": 0} | counters))
    return base


def set_counters(root: Path, name: str, **counters: int) -> None:
    for key, value in counters.items():
        (root / name / "statistics" / key).write_text(f"{value}\n")


def test_rates_need_two_samples_then_follow_the_counters(tmp_path):
    fake_device(tmp_path, "eno1", rx_bytes=1000, tx_bytes=500, rx_packets=10, tx_packets=5)
    clock = ManualClock(100.0)
    sampler = InterfaceSampler(["eno1"], root=tmp_path, clock=clock)
    first = sampler.sample()
    assert first == {"eno1": {"state": "up", "link_speed": 1000, "mtu": 9000, **UNKNOWN_RATES}}
    clock.now += 2.0
    set_counters(tmp_path, "eno1", rx_bytes=3000, tx_bytes=1500, rx_packets=30, tx_packets=11)
    assert sampler.sample()["eno1"] == {
        "state": "up",
        "link_speed": 1000,
        "mtu": 9000,
        "rx_bps": 8000,  # 2000 bytes in 2 s
        "tx_bps": 4000,
        "rx_pps": 10,
        "tx_pps": 3,
        "total_bps": 12000,
        "total_pps": 13,
    }


def test_unreadable_figures_are_not_known(tmp_path):
    fake_device(tmp_path, "bond0", speed="-1")  # a link without a speed
    fake_device(tmp_path, "veth0", speed=None)  # the driver refuses to give one
    clock = ManualClock(100.0)
    sampler = InterfaceSampler(["bond0", "veth0", "gone0"], root=tmp_path, clock=clock)
    sampler.sample()
    clock.now += 1.0
    figures = sampler.sample()
    assert figures["bond0"]["link_speed"] == figures["veth0"]["link_speed"] == "N/A"
    assert figures["bond0"]["rx_bps"] == 0  # measured: no traffic
    assert figures["gone0"] == {"state": "N/A", "link_speed": "N/A", "mtu": "N/A", **UNKNOWN_RATES}


def test_a_counter_going_backwards_gives_no_rate(tmp_path):
    fake_device(tmp_path, "eno1", rx_bytes=5000)
    clock = ManualClock(100.0)
    sampler = InterfaceSampler(["eno1"], root=tmp_path, clock=clock)
    sampler.sample()
    clock.now += 1.0
    set_counters(tmp_path, "eno1", rx_bytes=100)  # the device was recreated
    assert {key: sampler.sample()["eno1"][key] for key in UNKNOWN_RATES} == UNKNOWN_RATES
    clock.now += 1.0
    set_counters(tmp_path, "eno1", rx_bytes=200)
    assert sampler.sample()["eno1"]["rx_bps"] == 800


def test_only_the_configured_devices_once_each():
    networks = NetworksSection.model_validate(
        {
            "upstream": {"device": "eno1", "address": "10.0.0.1/24"},
            "cluster": {"device": "eno2", "address": "10.0.1.1/24"},
            "storage": {"device": "eno2", "address": "10.0.2.1/24"},
        }
    )
    assert sysinfo.network_devices(networks) == ["eno1", "eno2"]
    unset = NetworksSection.model_validate(
        {name: {"address": f"10.0.{i}.1/24"} for i, name in enumerate(("upstream", "cluster", "storage"))}
    )
    assert sysinfo.network_devices(unset) == []


def test_keepalive_carries_the_figures():
    keepalive = sysinfo.sample_keepalive(1.0, None, {"eno1": {"state": "up"}})
    assert keepalive.interfaces == {"eno1": {"state": "up"}}
    assert sysinfo.sample_keepalive(1.0).interfaces is None


def send_on_loopback(count: int, size: int) -> None:
    """Send ``count`` UDP datagrams of ``size`` bytes to ourselves over 127.0.0.1."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.bind(("127.0.0.1", 0))
        for _ in range(count):
            sender.sendto(b"x" * size, receiver.getsockname())


@pytest.mark.skipif(not (SYSFS_NET / "lo").exists(), reason="no loopback device in sysfs")
def test_loopback_counters_move_with_traffic():
    before = read_device("lo", at=0.0)
    assert before.counters is not None and before.mtu and before.mtu > 0
    assert before.link_speed is None  # the kernel gives loopback no speed
    send_on_loopback(50, 1000)
    after = read_device("lo", at=1.0)
    assert after.counters is not None
    assert after.counters["tx_packets"] - before.counters["tx_packets"] >= 50
    assert after.counters["rx_bytes"] - before.counters["rx_bytes"] >= 50 * 1000
    sampler = InterfaceSampler(["lo"])
    sampler.sample()
    send_on_loopback(50, 1000)
    figures = sampler.sample()["lo"]
    assert figures["rx_bps"] > 0 and figures["tx_pps"] > 0 and figures["link_speed"] == "N/A"
    assert figures["total_bps"] == figures["rx_bps"] + figures["tx_bps"]
