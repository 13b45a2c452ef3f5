"""The lab guest's network options and how its console reports are read."""

from __future__ import annotations

import pytest

from pvc.lab.guest import GuestImage, GuestNetwork, net_bound, probes


def test_cmdline_carries_hostname_and_probes() -> None:
    network = GuestNetwork("web1", ping=("10.9.0.1",), tcp=("10.9.0.7:80",), dns=("web2.lab.test@10.9.0.1",))
    line = GuestImage(kernel=None, initrd=None).cmdline(network=network)  # type: ignore[arg-type]
    assert line.split()[-5:] == [
        "lab_net=1",
        "lab_host=web1",
        "lab_ping=10.9.0.1",
        "lab_tcp=10.9.0.7:80",
        "lab_dns=web2.lab.test@10.9.0.1",
    ]


def test_cmdline_without_network_has_no_network_options() -> None:
    assert "lab_net" not in GuestImage(kernel=None, initrd=None).cmdline()  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["a b", "x;reboot", "$(halt)", "", "a,b"])
def test_cmdline_refuses_tokens_the_guest_would_split_or_run(bad: str) -> None:
    with pytest.raises(ValueError):
        GuestNetwork(hostname=bad).cmdline()
    with pytest.raises(ValueError):
        GuestNetwork(ping=(bad,)).cmdline()


def test_console_reports_are_parsed_latest_first() -> None:
    console = (
        "LAB-MARKER booted uptime=1.7\n"
        "LAB-TCP 10.9.0.7:80 closed\n"
        "LAB-NET eth0 10.9.0.5/24 router=10.9.0.1\n"
        "LAB-PING 10.9.0.1 fail\n"
        "HB 2 2.8\n"
        "LAB-PING 10.9.0.1 ok\n"
        "LAB-TCP 10.9.0.7:80 open\n"
        "LAB-DNS web2.lab.test 10.9.0.7\n"
        "LAB-DNS web3.lab.test \n"
    )
    assert net_bound(console) == {"eth0": "10.9.0.5/24"}
    assert probes(console) == {
        ("PING", "10.9.0.1"): "ok",
        ("TCP", "10.9.0.7:80"): "open",
        ("DNS", "web2.lab.test"): "10.9.0.7",
        ("DNS", "web3.lab.test"): "",
    }
