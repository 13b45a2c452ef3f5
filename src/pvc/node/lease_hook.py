"""dnsmasq's lease hook: what dnsmasq tells it, and the lease lines it prints back.

dnsmasq runs with ``leasefile-ro`` and ``dhcp-script=<this hook>`` (see
:mod:`pvc.net.dnsmasq`), so the hook keeps the leases of its network:

* ``hook init``: at dnsmasq's start; the hook prints every lease it keeps, one dnsmasq
  lease-file line each (``<expiry> <mac> <ip> <hostname|*> <client-id|*>``), and exits 0.
* ``hook add|old MAC IP [HOSTNAME]``: a lease was made or changed (``old`` also for each
  lease dnsmasq restored at start or after SIGHUP); the hook stores it.
* ``hook del MAC IP [HOSTNAME]``: a lease ended; the hook forgets it.
* anything else (``tftp``, ``arp-add`` ...): ignored, as dnsmasq asks.

The environment carries the rest: ``DNSMASQ_LEASE_EXPIRES`` (epoch seconds; 0 for an
infinite lease; ``DNSMASQ_LEASE_LENGTH`` instead on hosts without a real-time clock),
``DNSMASQ_CLIENT_ID``, ``DNSMASQ_INTERFACE`` (not set for leases restored at start),
``DNSMASQ_DATA_MISSING`` (restored leases lack the client id) and, for DHCPv6,
``DNSMASQ_IAID`` and ``DNSMASQ_MAC`` with the client's DUID in the MAC position. The
network is :data:`pvc.net.dnsmasq.VNI_ENV`, which PVC puts in dnsmasq's environment;
failing that, the interface's bridge name.

This module is the pure part: :func:`parse_event`, :func:`lease_line` and
:func:`handle`, which runs one invocation against any :class:`LeaseStore`. Only IPv4
leases are printed at ``init`` (an IPv6 lease line needs the server's DUID line first);
DHCPv6 clients ask again after a restart.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TextIO

from pvc.config import load_config
from pvc.domain_xml.bridges import vni_of_bridge
from pvc.errors import PVCError
from pvc.net.dnsmasq import VNI_ENV
from pvc.state import networks
from pvc.state.errors import StateError
from pvc.state.store import Store

#: The actions that change a lease; every other first argument is ignored.
LEASE_ACTIONS = ("add", "old", "del")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_CLIENT_ID = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*")
_DUID = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*")


class LeaseHookError(PVCError):
    """dnsmasq called the hook with arguments or an environment it cannot read."""


@dataclass(frozen=True)
class LeaseEvent:
    """One lease as dnsmasq reported it.

    ``mac`` is the client's MAC (for DHCPv6 the one dnsmasq knows, else its DUID);
    ``expiry`` is epoch seconds (0: never); ``vni`` is the network it belongs to.
    """

    action: str
    mac: str
    ip: str
    hostname: str | None
    expiry: int
    client_id: str | None
    interface: str | None
    vni: int
    duid: str | None = None
    iaid: str | None = None

    @property
    def is_ip4(self) -> bool:
        return ipaddress.ip_address(self.ip).version == 4


class LeaseStore(Protocol):
    """Where the leases of the networks are kept (ZooKeeper in the node; a fake in tests)."""

    def put(self, vni: int, event: LeaseEvent) -> None:
        """Keep the lease of ``event.mac`` in network ``vni`` as ``event`` says."""

    def remove(self, vni: int, mac: str) -> None:
        """Forget the lease of ``mac`` in network ``vni`` (nothing to do if there is none)."""

    def all(self, vni: int) -> Sequence[LeaseEvent]:
        """Every lease kept for network ``vni``."""


def network_of(env: Mapping[str, str]) -> int:
    """The VNI of the network the hook serves, from its environment."""
    text = env.get(VNI_ENV, "")
    if text.isdigit() and 0 < int(text) < 2**24:
        return int(text)
    vni = vni_of_bridge(env.get("DNSMASQ_INTERFACE", ""))
    if vni is None:
        raise LeaseHookError(f"no network: neither {VNI_ENV} nor DNSMASQ_INTERFACE names one")
    return vni


def _seconds(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise LeaseHookError(f"{name}={text!r} is not a number of seconds")
    return int(text)


def _expiry(env: Mapping[str, str], now: float) -> int:
    """When the lease ends, in epoch seconds (0: never)."""
    expires = _seconds(env, "DNSMASQ_LEASE_EXPIRES")
    if expires is not None:
        return expires
    length = _seconds(env, "DNSMASQ_LEASE_LENGTH")
    if length is not None:
        return int(now) + length if length else 0
    remaining = _seconds(env, "DNSMASQ_TIME_REMAINING")
    return int(now) + remaining if remaining is not None else 0


def _optional(env: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> str | None:
    text = env.get(name) or None
    if text is not None and not pattern.fullmatch(text):
        raise LeaseHookError(f"{name}={text!r} is not valid")
    return text


def parse_event(argv: Sequence[str], env: Mapping[str, str], now: float | None = None) -> LeaseEvent:
    """The lease event of one hook call: ``argv`` without the program name, and its environment.

    LeaseHookError for an action other than add/old/del or values that are not a MAC (or
    DUID), an IP address, a host name or a number where dnsmasq puts them.
    """
    if len(argv) < 3 or argv[0] not in LEASE_ACTIONS:
        raise LeaseHookError(f"not a lease event: {list(argv)!r}")
    action, identity, address = argv[0], argv[1].lower(), argv[2]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise LeaseHookError(f"{address!r} is not an IP address") from None
    hostname = argv[3] if len(argv) > 3 and argv[3] else None
    if hostname is not None and not _HOSTNAME.fullmatch(hostname):
        raise LeaseHookError(f"{hostname!r} is not a host name")
    duid = iaid = None
    if ip.version == 6:
        if not _DUID.fullmatch(identity):
            raise LeaseHookError(f"{identity!r} is not a DUID")
        duid, iaid = identity, env.get("DNSMASQ_IAID") or None
        mac = (_optional(env, "DNSMASQ_MAC", _MAC) or duid).lower()
    elif _MAC.fullmatch(identity):
        mac = identity
    else:
        raise LeaseHookError(f"{identity!r} is not an Ethernet MAC address")
    interface = env.get("DNSMASQ_INTERFACE") or None
    return LeaseEvent(
        action=action,
        mac=mac,
        ip=str(ip),
        hostname=hostname.lower() if hostname else None,
        expiry=_expiry(env, time.time() if now is None else now),
        client_id=_optional(env, "DNSMASQ_CLIENT_ID", _CLIENT_ID) if ip.version == 4 else None,
        interface=interface,
        vni=network_of(env),
        duid=duid,
        iaid=iaid,
    )


def lease_line(lease: LeaseEvent) -> str:
    """The dnsmasq lease-file line of an IPv4 lease: ``<expiry> <mac> <ip> <hostname|*> <client-id|*>``."""
    if not lease.is_ip4:
        raise LeaseHookError(f"only IPv4 leases have lease lines here, not {lease.ip}")
    return f"{lease.expiry} {lease.mac} {lease.ip} {lease.hostname or '*'} {lease.client_id or '*'}"


def handle(
    argv: Sequence[str],
    env: Mapping[str, str],
    store: LeaseStore,
    out: TextIO,
    clock: Callable[[], float] = time.time,
) -> int:
    """Carry out one hook call (``argv`` without the program name) against ``store``; the exit status.

    ``init`` prints the network's IPv4 leases that have not expired to ``out``; ``add`` and
    ``old`` keep the lease (an ``old`` event missing data keeps the stored client id);
    ``del`` forgets it; any other action does nothing.
    """
    action = argv[0] if argv else ""
    if action == "init":
        vni = network_of(env)
        now = clock()
        for lease in store.all(vni):
            if lease.is_ip4 and (lease.expiry == 0 or lease.expiry > now):
                out.write(lease_line(lease) + "\n")
        out.flush()
        return 0
    if action not in LEASE_ACTIONS:
        return 0
    event = parse_event(argv, env, clock())
    if action == "del":
        store.remove(event.vni, event.mac)
        return 0
    if env.get("DNSMASQ_DATA_MISSING") == "1" and event.client_id is None:
        known = next((lease for lease in store.all(event.vni) if lease.mac == event.mac), None)
        if known is not None and known.ip == event.ip:
            event = replace(event, client_id=known.client_id)
    store.put(event.vni, event)
    return 0


# -- the hook as dnsmasq runs it: leases kept in ZooKeeper -----------------------------------


class ZookeeperLeases:
    """The :class:`LeaseStore` of a running cluster: each network's leases in ZooKeeper."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def put(self, vni: int, event: LeaseEvent) -> None:
        networks.put_lease(
            self.store,
            vni,
            event.mac,
            event.ip,
            hostname=event.hostname or "",
            expiry=event.expiry,
            client_id=event.client_id or "",
        )

    def remove(self, vni: int, mac: str) -> None:
        networks.remove_lease(self.store, vni, mac)

    def all(self, vni: int) -> Sequence[LeaseEvent]:
        return [
            LeaseEvent(
                action="old",
                mac=lease.mac,
                ip=lease.ip4_address,
                hostname=lease.hostname or None,
                expiry=lease.expiry,
                client_id=lease.client_id or None,
                interface=None,
                vni=vni,
            )
            for lease in networks.read_leases(networks.StoreReader(self.store), vni)
        ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pvc.node.lease_hook ACTION [MAC IP [HOSTNAME]]``, run by dnsmasq with the
    node's configuration file in ``PVC_CONFIG_FILE``; exit status 0 unless the lease could
    not be kept (dnsmasq logs a failing hook and carries on)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config()
        store = Store(
            config.zookeeper.connect_string,
            timeout=config.zookeeper.session_timeout,
            credential=config.zookeeper.load_credential(),
        )
        if not store.start(attempt_timeout=5.0, give_up_after=10.0):
            print("pvc lease hook: ZooKeeper is unreachable", file=sys.stderr)
            return 1
        try:
            return handle(args, os.environ, ZookeeperLeases(store), sys.stdout)
        finally:
            store.stop()
    except (PVCError, StateError) as error:
        print(f"pvc lease hook: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
