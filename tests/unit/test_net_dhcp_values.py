"""Checked dnsmasq values: what cannot be read as an address or network is refused by name."""

from __future__ import annotations

import ipaddress

import pytest

from pvc.net import dhcp_values
from pvc.net.dhcp_values import DhcpValueError


@pytest.mark.parametrize(
    ("check", "value", "problem"),
    [
        (dhcp_values.ip4, "10.0.0.300", "'10.0.0.300' is not an IPv4 address"),
        (dhcp_values.ip6, "10.0.0.1", "'10.0.0.1' is not an IPv6 address"),
        (dhcp_values.ip_any, None, "None is not an IP address"),
        (dhcp_values.network4, "10.0.0.1/24", "IPv4 network '10.0.0.1/24' is not a network in CIDR form"),
        (dhcp_values.network4, "10.0.0.0/31", "IPv4 network '10.0.0.0/31' has no room for hosts"),
        (dhcp_values.network6, "fd00::/65", "IPv6 network 'fd00::/65' is smaller than /64"),
        (dhcp_values.network6, "fd00::1/64", "IPv6 network 'fd00::1/64' is not a network in CIDR form"),
    ],
)
def test_unreadable_values_are_refused_with_what_is_wrong(check, value, problem):
    with pytest.raises(DhcpValueError) as caught:
        check(value)
    assert str(caught.value).endswith(problem)


def test_readable_values_come_back_parsed():
    assert dhcp_values.ip4("10.0.0.1", "gateway") == ipaddress.IPv4Address("10.0.0.1")
    assert dhcp_values.ip_any("fd00::1") == ipaddress.IPv6Address("fd00::1")
    assert dhcp_values.network4("10.0.0.0/24") == ipaddress.IPv4Network("10.0.0.0/24")
    assert dhcp_values.network6("fd00::/64") == ipaddress.IPv6Network("fd00::/64")
