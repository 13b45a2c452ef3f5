"""Checked values for dnsmasq's configuration: names, MAC addresses, IP addresses, paths.

Every value that ends up in a dnsmasq configuration line passes one of these first. Each
returns the value in its normal form (lower-case names and MACs, ``ipaddress`` objects)
or raises :class:`DhcpValueError`; none lets a line break, a comma or anything else
through that could end the line or add a field dnsmasq would read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TypeVar

from pvc.errors import PVCError

#: One DNS label (RFC 1123): letters, digits and inner hyphens, 1 to 63 characters.
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_INTERFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
T = TypeVar("T")
#: Longest domain name (RFC 1035, without the final dot).
DOMAIN_MAX_LENGTH = 253


class DhcpValueError(PVCError):
    """A value that may not go into a dnsmasq configuration; ``str()`` names it."""


def hostname(value: str, what: str = "hostname") -> str:
    """A host name of one DNS label, lower-cased (dnsmasq appends the network's domain)."""
    if not isinstance(value, str) or not _LABEL.fullmatch(value.lower()):
        raise DhcpValueError(f"{what} {value!r} is not one DNS label (letters, digits, inner hyphens)")
    return value.lower()


def domain(value: str) -> str:
    """A DNS domain of one or more labels, lower-cased, without a final dot."""
    if not isinstance(value, str):
        raise DhcpValueError(f"domain {value!r} is not text")
    name = value.lower().removesuffix(".")
    if (
        not name
        or len(name) > DOMAIN_MAX_LENGTH
        or not all(_LABEL.fullmatch(part) for part in name.split("."))
    ):
        raise DhcpValueError(f"domain {value!r} is not a DNS name")
    return name


def mac(value: str) -> str:
    """An Ethernet MAC address as six lower-case hex pairs separated by colons."""
    if not isinstance(value, str) or not _MAC.fullmatch(value.lower().replace("-", ":")):
        raise DhcpValueError(f"MAC address {value!r} is not six hex pairs")
    return value.lower().replace("-", ":")


def _parsed(parse: Callable[[str], T], value: str, problem: str) -> T:
    """``parse(value)``, or :class:`DhcpValueError` saying ``problem`` when it cannot be read."""
    try:
        return parse(value)
    except (ValueError, TypeError):
        raise DhcpValueError(problem) from None


def ip4(value: str, what: str = "address") -> ipaddress.IPv4Address:
    """An IPv4 address."""
    return _parsed(ipaddress.IPv4Address, value, f"{what} {value!r} is not an IPv4 address")


def ip6(value: str, what: str = "address") -> ipaddress.IPv6Address:
    """An IPv6 address."""
    return _parsed(ipaddress.IPv6Address, value, f"{what} {value!r} is not an IPv6 address")


def ip_any(value: str, what: str = "address") -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 or IPv6 address."""
    return _parsed(ipaddress.ip_address, value, f"{what} {value!r} is not an IP address")


def network4(value: str) -> ipaddress.IPv4Network:
    """An IPv4 network in CIDR form (host bits must be zero), at most /30."""
    net = _parsed(ipaddress.IPv4Network, value, f"IPv4 network {value!r} is not a network in CIDR form")
    if net.prefixlen > 30:
        raise DhcpValueError(f"IPv4 network {value!r} has no room for hosts")
    return net


def network6(value: str) -> ipaddress.IPv6Network:
    """An IPv6 network in CIDR form (host bits zero), /64 or larger (router advertisements)."""
    net = _parsed(ipaddress.IPv6Network, value, f"IPv6 network {value!r} is not a network in CIDR form")
    if net.prefixlen > 64:
        raise DhcpValueError(f"IPv6 network {value!r} is smaller than /64")
    return net


def interface(value: str) -> str:
    """A Linux interface name."""
    if not isinstance(value, str) or not _INTERFACE.fullmatch(value):
        raise DhcpValueError(f"{value!r} is not an interface name")
    return value


def path(value: object, what: str = "path") -> PurePosixPath:
    """An absolute path of printable characters without commas (dnsmasq splits on them)."""
    text = str(value)
    if not text.startswith("/") or any(not char.isprintable() or char == "," for char in text):
        raise DhcpValueError(
            f"{what} {text!r} is not an absolute path of printable characters without commas"
        )
    return PurePosixPath(text)
