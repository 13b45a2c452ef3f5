"""Floating addresses for real, on the loopback link of a network namespace made for the test."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from pvc import commands
from pvc.net import addresses
from pvc.net.iproute import NetError, ip

ADDRESS = "192.0.2.10/24"  # TEST-NET-1, and only ever inside the test's own namespace
LINK = "lo"  # the namespace's own loopback: no module to load, nothing outside touched


def _ip_netns_works() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    return commands.run(["ip", "netns", "list"], timeout=10, accept=None).returncode == 0


pytestmark = pytest.mark.skipif(not _ip_netns_works(), reason="needs root and ip netns")


@pytest.fixture
def netns():
    """A new namespace with its loopback up; deleted afterwards with all in it."""
    name = f"pvc-addr-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        ip("link", "set", LINK, "up", netns=name)
        yield name
    finally:
        ip("netns", "del", name, check=False)


def _addresses(netns: str) -> str:
    return ip("-o", "addr", "show", "dev", LINK, netns=netns).stdout


def test_add_and_remove_tolerate_repeats(netns) -> None:
    addresses.add(ADDRESS, LINK, netns=netns)
    assert ADDRESS in _addresses(netns)
    addresses.add(ADDRESS, LINK, netns=netns)  # already there ("File exists")
    assert _addresses(netns).count(ADDRESS) == 1
    addresses.remove(ADDRESS, LINK, netns=netns)
    assert ADDRESS not in _addresses(netns)
    addresses.remove(ADDRESS, LINK, netns=netns)  # already gone ("Cannot assign requested address")
    assert ADDRESS not in _addresses(netns)


def test_other_refusals_are_errors_naming_the_command(netns) -> None:
    with pytest.raises(NetError) as caught:
        addresses.add(ADDRESS, "pvcnosuch0", netns=netns)
    message = str(caught.value)
    assert message.startswith(f"ip -n {netns} addr add {ADDRESS} dev pvcnosuch0: ")
    assert "pvcnosuch0" in message.split(": ", 1)[1]
    with pytest.raises(NetError, match=f"^ip -n {netns} addr add not-an-address dev {LINK}: "):
        addresses.add("not-an-address", LINK, netns=netns)
