"""Which VM is asking the metadata service: its source address, through the DHCP leases and
reservations of the managed networks, to a MAC address, to the VM with a NIC of that MAC
on that network (see :mod:`pvc.metadata`).

A lease's MAC is what the DHCP client claimed, so the claim is checked against the wire:
the MAC the kernel's neighbour table holds for the address (the machine that completed
the TCP handshake) must be the lease's. When two VMs would match, nobody is answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pvc.domain_xml.bridges import vni_of_bridge
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import parse
from pvc.net import neighbours
from pvc.state import paths
from pvc.state.cache import ClusterCache
from pvc.state.networks import Lease, Reservation, vnis
from pvc.state.records import decode_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requester:
    """A VM as the metadata service knows it."""

    uuid: str
    name: str
    profile: str
    mac: str
    address: str
    vni: int


def network_nics(xml: bytes | None) -> tuple[tuple[int, str], ...]:
    """(vni, lower-case MAC) of each NIC on a managed network's bridge in a VM's XML (the
    cache remembers it per definition: a request parses only definitions that changed)."""
    try:
        _, summary = parse(decode_text(xml))
    except DomainXMLError:
        return ()
    return tuple(
        (vni, nic.mac.lower())
        for nic in summary.nics
        if nic.mac and (vni := vni_of_bridge(nic.source)) is not None
    )


def _macs_at(cache: ClusterCache, address: str) -> list[tuple[int, str]]:
    """(vni, mac) of every lease or reservation holding ``address`` (each record decoded
    once per change, by the cache)."""
    found = []
    for vni in vnis(cache):
        for parent, decode in (
            (paths.network_reservations(vni), Reservation.from_bytes),
            (paths.network_leases(vni), Lease.from_bytes),
        ):
            for mac in cache.children(parent):
                entry = cache.parsed(f"{parent}/{mac}", decode)
                if entry is not None and entry.ip4_address == address:
                    found.append((vni, entry.mac.lower()))
    return found


def find_requester(
    cache: ClusterCache, address: str, wire_mac: Callable[[str], str | None] = neighbours.mac_of
) -> Requester | None:
    """The VM whose NIC holds ``address`` (by its lease or reservation) and sent from it,
    or None (no such VM, the MAC on the wire is another, or more than one VM matches)."""
    seen = wire_mac(address)
    holders = [(vni, mac) for vni, mac in _macs_at(cache, address) if mac == seen]
    if not holders:
        return None
    matches = [
        (uuid, vni, mac)
        for uuid in cache.vm_uuids()
        for vni, mac in cache.parsed(paths.domain_xml(uuid), network_nics)
        if (vni, mac) in holders
    ]
    found = [
        Requester(
            uuid=uuid, name=record.meta.name, profile=record.meta.profile, mac=mac, address=address, vni=vni
        )
        for uuid, vni, mac in matches
        if (record := cache.vm(uuid)) is not None
    ]
    if len(found) != 1:
        if found:
            log.warning(
                "%s is held by more than one VM (%s): not answered", address, ", ".join(r.name for r in found)
            )
        return None
    return found[0]
