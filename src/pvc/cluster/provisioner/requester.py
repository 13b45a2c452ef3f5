"""Which VM is asking the metadata service: its source address, through the DHCP leases and
reservations of the managed networks, to a MAC address, to the VM with a NIC of that MAC
on that network (see :mod:`pvc.metadata`)."""

from __future__ import annotations

from dataclasses import dataclass

from pvc.cluster.vm.queries import vm_nics
from pvc.domain_xml.bridges import vni_of_bridge
from pvc.state.cache import ClusterCache
from pvc.state.networks import read_leases, read_reservations, vnis


@dataclass(frozen=True)
class Requester:
    """A VM as the metadata service knows it."""

    uuid: str
    name: str
    profile: str
    mac: str
    address: str
    vni: int


def _macs_at(cache: ClusterCache, address: str) -> list[tuple[int, str]]:
    """(vni, mac) of every lease or reservation holding ``address``."""
    found = []
    for vni in vnis(cache):
        for entry in [*read_reservations(cache, vni), *read_leases(cache, vni)]:
            if entry.ip4_address == address:
                found.append((vni, entry.mac.lower()))
    return found


def find_requester(cache: ClusterCache, address: str) -> Requester | None:
    """The VM whose NIC holds ``address`` (by its lease or reservation), or None."""
    holders = _macs_at(cache, address)
    if not holders:
        return None
    for record, nic in vm_nics(cache):
        vni = vni_of_bridge(nic.source)
        if vni is not None and (vni, (nic.mac or "").lower()) in holders:
            return Requester(
                uuid=record.uuid,
                name=record.meta.name,
                profile=record.meta.profile,
                mac=nic.mac.lower(),
                address=address,
                vni=vni,
            )
    return None
