import json
from pathlib import Path

import pytest

from pvc.config import parse_config
from pvc.lab import endpoint
from pvc.lab.layout import LabLayout
from pvc.lab.nodeconf import node_config_data
from pvc.node.sysinfo import parse_meminfo
from pvc.state import paths
from pvc.state.logring import LogRingWriter, per_slot_lines
from pvc.state.records import Keepalive, NodeStatic, decode_json, encode
from pvc.state.store import Transaction


def test_meminfo_in_mib():
    text = "MemTotal:       2048000 kB\nMemFree:  100 kB\nMemAvailable:   1024000 kB\n"
    assert parse_meminfo(text) == {"total": 2000, "used": 1000, "free": 1000}


def test_records_round_trip_and_tolerate_garbage():
    static = NodeStatic(name="n1", cpu_count=4)
    assert NodeStatic.from_bytes(encode(static)) == static
    assert NodeStatic.from_bytes(b"not json") is None
    assert NodeStatic.from_bytes(encode({"name": "n1", "future_field": 1})) == NodeStatic(name="n1")
    assert Keepalive.from_bytes(b"") is None


def test_log_ring_fills_slots_in_sequence():
    writer = LogRingWriter("n1", max_lines=31 * 2, slots=32)
    assert writer.per_slot == 2 == per_slot_lines(62, 32)
    for i in range(5):
        writer.append(f"line {i}")
    txn = Transaction()
    assert writer.add_to(txn) == 5
    written = {op[1][0]: decode_json(op[1][1]) for op in txn.ops}
    assert written == {
        paths.node_log_slot("n1", 0): {"seq": 0, "lines": ["line 0", "line 1"]},
        paths.node_log_slot("n1", 1): {"seq": 1, "lines": ["line 2", "line 3"]},
        paths.node_log_slot("n1", 2): {"seq": 2, "lines": ["line 4"]},
    }
    writer.append("line 5")
    txn = Transaction()
    writer.add_to(txn)
    assert [(op[1][0], decode_json(op[1][1])["lines"]) for op in txn.ops] == [
        (paths.node_log_slot("n1", 2), ["line 4", "line 5"])
    ]


def test_lab_layout_names_and_configs_validate(tmp_path: Path):
    layout = LabLayout(tmp_path, nodes=4, coordinators=3, prefix="pvct", net_index=7)
    assert layout.node_names == ["hv1", "hv2", "hv3", "hv4"]
    assert layout.coordinator_names == ["hv1", "hv2", "hv3"]
    assert layout.netns("hv2") == "pvct7-hv2"
    assert all(len(name) <= 15 for name in (layout.bridge, layout.host_link("hv4"), layout.node_link("hv4")))
    assert layout.cluster_ip("hv4") == "10.110.7.4"
    assert layout.zookeeper_hosts == ["10.110.7.1:2181", "10.110.7.2:2181", "10.110.7.3:2181"]
    key = endpoint.new_api_key(layout)
    assert len(key) >= 32 and layout.api_key_file.stat().st_mode & 0o777 == 0o600
    config = parse_config(node_config_data(layout, "hv4"))
    assert not config.is_coordinator
    assert str(config.networks.upstream.floating_address) == "10.100.7.250/24"
    # the lab runs like production: keys required, the lab's key, bound to the floating address
    assert config.api.authentication.enabled and [t.token for t in config.api.token] == [key]
    assert config.api_listen_address == "10.100.7.250" and config.api.user == "pvcapi"
    assert endpoint.connection(layout).api_key == key
    assert endpoint.new_api_key(layout) != key  # a new one each time
    assert LabLayout.from_json(layout.to_json()) == layout


def test_a_lab_routes_to_its_peer_labs_through_the_host(tmp_path: Path):
    layout = LabLayout(tmp_path, net_index=0, peers=(1, 5))
    assert layout.peer_routes == [("10.100.1.0/24", "10.100.0.254"), ("10.100.5.0/24", "10.100.0.254")]
    assert LabLayout.from_json(json.loads(json.dumps(layout.to_json()))) == layout
    assert LabLayout(tmp_path).peer_routes == []
    # and lets its nodes send snapshots and mirrors to exactly the peers' APIs
    (tmp_path / "api-key").write_text("k" * 40)
    backup = parse_config(node_config_data(layout, "hv1")).backup
    assert backup.send_destinations == ["http://10.100.1.250:7370/api/v1", "http://10.100.5.250:7370/api/v1"]
    assert backup.allows_destination("http://10.100.5.250:7370/api/v1")
    assert not backup.allows_destination("http://10.100.2.250:7370/api/v1")
    assert parse_config(node_config_data(LabLayout(tmp_path), "hv1")).backup.send_destinations == []
    for bad in ((0,), (256,)):
        with pytest.raises(ValueError, match="peer net indexes"):
            LabLayout(tmp_path, net_index=0, peers=bad)


def test_gratuitous_arp_frame_layout():
    from pvc.net.arp import garp_frame

    mac = bytes.fromhex("020000000001")
    frame = garp_frame(mac, "10.100.0.250")
    assert len(frame) == 42
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == mac and frame[12:14] == b"\x08\x06"
    assert frame[20:22] == b"\x00\x02"  # reply
    assert frame[22:28] == mac and frame[28:32] == bytes([10, 100, 0, 250]) == frame[38:42]


def test_lab_refuses_a_directory_the_api_user_cannot_enter(tmp_path: Path):
    from pvc.lab.cluster import LabError, _check_api_can_enter

    closed = tmp_path / "closed"
    (closed / "lab").mkdir(parents=True)
    closed.chmod(0o700)
    with pytest.raises(LabError, match=f"cannot enter {closed}"):
        _check_api_can_enter(closed / "lab")
