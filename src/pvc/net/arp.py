"""Gratuitous ARP (and its IPv6 twin, unsolicited neighbour advertisements): tell the
segment that a (floating) address now lives here.

Without it, peers keep the previous owner's MAC in their neighbour cache until it
expires (tens of seconds), and a moved floating address is unreachable meanwhile.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
ALL_NODES = ipaddress.IPv6Address("ff02::1")
#: Neighbour advertisement flags: router and override, not solicited (hosts drop a solicited
#: advertisement sent to a multicast address). Sent to each host's own MAC, it is forwarded
#: like any unicast frame, where a bridge port with neighbour suppression would not flood it.
NA_FLAGS = 0xA0000000


def mac_of(device: str) -> bytes:
    text = Path(f"/sys/class/net/{device}/address").read_text().strip()
    return bytes.fromhex(text.replace(":", ""))


def garp_frame(mac: bytes, address: str, *, reply: bool = True) -> bytes:
    """An Ethernet broadcast gratuitous ARP (reply or request) announcing ``address`` at ``mac``."""
    ip = ipaddress.IPv4Address(address).packed
    ethernet = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    target_mac = BROADCAST if reply else b"\x00" * 6
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2 if reply else 1) + mac + ip + target_mac + ip
    return ethernet + arp


#: Seconds after takeover at which announcements are sent. Linux ignores neighbour
#: updates within ``locktime`` (1 s) of the previous one, so one burst is not enough.
SCHEDULE = (0.0, 1.1, 2.2)


def reply_frame(mac: bytes, address: str, to: bytes) -> bytes:
    """A unicast ARP reply telling the host at MAC ``to`` that ``address`` is at ``mac``.

    Its target address is 0.0.0.0, not ``address``: a bridge port with neighbour
    suppression (an EVPN VXLAN) does not forward gratuitous ARP (sender == target), so
    hosts behind other nodes only hear of a moved address through a reply like this.
    """
    ip = ipaddress.IPv4Address(address).packed
    ethernet = to + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + mac + ip + to + b"\x00" * 4
    return ethernet + arp


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def advertisement_frame(mac: bytes, address: str, to: bytes) -> bytes:
    """A neighbour advertisement to the host at MAC ``to`` (IPv6 destination all-nodes)
    saying that ``address`` is at ``mac``, with the override flag so it replaces a cached MAC."""
    source = ipaddress.IPv6Address(address).packed
    option = struct.pack("!BB", 2, 1) + mac  # target link-layer address
    body = struct.pack("!I", NA_FLAGS) + source + option
    pseudo = source + ALL_NODES.packed + struct.pack("!I3xB", 4 + len(body), 58)
    icmp = struct.pack("!BBH", 136, 0, _checksum(pseudo + struct.pack("!BBH", 136, 0, 0) + body)) + body
    header = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255) + source + ALL_NODES.packed
    return to + mac + struct.pack("!H", ETH_P_IPV6) + header + icmp


def announce(
    device: str, address: str, schedule: tuple[float, ...] = SCHEDULE, *, hosts: Iterable[str] = ()
) -> None:
    """Announce ``address`` on ``device`` now and later (in the background). IPv4: broadcast
    gratuitous ARP, and a unicast reply to each MAC of ``hosts`` (``aa:bb:...``); IPv6: a
    neighbour advertisement to each of ``hosts``."""
    mac = mac_of(device)
    targets = [bytes.fromhex(host.replace(":", "")) for host in hosts]
    if ipaddress.ip_address(address).version == 6:
        frames = [advertisement_frame(mac, address, to) for to in targets]
    else:
        frames = [garp_frame(mac, address, reply=False), garp_frame(mac, address, reply=True)]
        frames += [reply_frame(mac, address, to) for to in targets]

    def send_all() -> None:
        started = time.monotonic()
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
            sock.bind((device, 0))
            for at in schedule:
                time.sleep(max(0.0, started + at - time.monotonic()))
                for frame in frames:
                    sock.send(frame)

    threading.Thread(target=send_all, name=f"garp-{address}", daemon=True).start()
