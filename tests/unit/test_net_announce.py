"""Telling hosts behind other nodes that a gateway moved: unicast ARP replies."""

from __future__ import annotations

import ipaddress
import json
import struct

from pvc import commands
from pvc.commands import CommandResult
from pvc.net import links
from pvc.net.arp import advertisement_frame, reply_frame

OURS = bytes.fromhex("02aabbccddee")
HOST = bytes.fromhex("525400000001")


def test_the_reply_goes_to_the_host_and_is_not_gratuitous() -> None:
    frame = reply_frame(OURS, "10.9.0.1", HOST)
    assert frame[:6] == HOST and frame[6:12] == OURS and frame[12:14] == b"\x08\x06"
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 2)  # an Ethernet/IPv4 reply
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    target_mac, target_ip = frame[32:38], frame[38:42]
    assert (sender_mac, sender_ip) == (OURS, bytes([10, 9, 0, 1]))
    assert target_mac == HOST
    assert target_ip != sender_ip  # sender == target is gratuitous, which EVPN ports drop


def test_bridge_hosts_are_the_learned_unicast_macs(monkeypatch) -> None:
    table = [
        {"mac": "33:33:00:00:00:01", "ifname": "vmbr5", "flags": ["self"], "state": "permanent"},
        {
            "mac": "52:54:00:00:00:01",
            "ifname": "vxlan5",
            "flags": ["extern_learn"],
            "master": "vmbr5",
            "state": "",
        },
        {"mac": "52:54:00:00:00:02", "ifname": "vnet0", "flags": [], "master": "vmbr5", "state": ""},
        {
            "mac": "ce:70:4f:83:3d:43",
            "ifname": "vxlan5",
            "flags": [],
            "master": "vmbr5",
            "state": "permanent",
        },
        {"mac": "00:00:00:00:00:00", "ifname": "vxlan5", "flags": ["self"], "state": "permanent"},
        {"mac": "52:54:00:00:00:03", "ifname": "vxlan5", "flags": ["self", "extern_learn"], "state": ""},
        {"mac": "01:00:5e:00:00:01", "ifname": "vnet0", "flags": [], "master": "vmbr5", "state": ""},
    ]
    asked = []

    def run(argv, **_kwargs):
        asked.append(list(argv))
        return CommandResult(list(argv), 0, json.dumps(table), "")

    monkeypatch.setattr(commands, "run", run)
    assert links.bridge_hosts("vmbr5") == {"52:54:00:00:00:01", "52:54:00:00:00:02"}
    assert asked == [["bridge", "-j", "fdb", "show", "br", "vmbr5"]]


def test_the_neighbour_advertisement_overrides_and_checks_out() -> None:
    frame = advertisement_frame(OURS, "fd00:9::1", HOST)
    assert frame[:6] == HOST and frame[6:12] == OURS and frame[12:14] == b"\x86\xdd"
    ipv6, icmp = frame[14:54], frame[54:]
    payload_length, next_header, hops = struct.unpack("!HBB", ipv6[4:8])
    source, destination = ipv6[8:24], ipv6[24:40]
    assert (payload_length, next_header, hops) == (len(icmp), 58, 255)
    assert destination == ipaddress.IPv6Address("ff02::1").packed
    assert icmp[0] == 136  # a neighbour advertisement
    assert struct.unpack("!I", icmp[4:8])[0] >> 29 == 0b101  # router, override; not solicited
    assert icmp[8:24] == ipaddress.IPv6Address("fd00:9::1").packed == source
    assert icmp[24:26] == b"\x02\x01" and icmp[26:32] == OURS  # target link-layer address
    pseudo = source + destination + struct.pack("!I3xB", len(icmp), 58)
    words = struct.unpack(f"!{(len(pseudo) + len(icmp)) // 2}H", pseudo + icmp)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF  # the checksum makes the one's-complement sum all ones
