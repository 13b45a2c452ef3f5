"""Probing ZooKeeper members with four-letter words, the primary's watch on them, and the
faults they make (a fake member: a small TCP server on loopback)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvc.cluster.faults.checks import ZOOKEEPER_MEMBER_DOWN, zookeeper_findings
from pvc.config import parse_config
from pvc.lab import endpoint
from pvc.lab.layout import LabLayout
from pvc.lab.nodeconf import node_config_data
from pvc.node.zk_members import MemberWatch
from pvc.state.members import MemberHealth, probe
from pvc.state.records import NodeRecord, NodeStatic

NOT_ALLOWED = "{} is not executed because it is not in the whitelist.\n"


class FakeMember:
    """Answers four-letter words from ``replies`` (None: read the word, answer nothing)."""

    def __init__(self, replies: dict[str, str | None], port: int = 0) -> None:
        self.replies = replies
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.words: list[str] = []
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                word = conn.recv(4).decode()
                self.words.append(word)
                reply = self.replies.get(word, NOT_ALLOWED.format(word))
                if reply is None:
                    self._stop.wait(5)
                    continue
                conn.sendall(reply.encode())

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress
        self.sock.close()


@pytest.fixture
def member() -> Iterator[FakeMember]:
    fake = FakeMember({"ruok": "imok"})
    yield fake
    fake.close()


def test_a_running_member_answers_and_a_closed_one_does_not(member: FakeMember) -> None:
    assert probe(member.host) == MemberHealth(member.host, True, "imok")
    assert member.words == ["ruok"]
    member.close()
    started = time.monotonic()
    down = probe(member.host)
    assert down.answering is False and down.detail == f"connection to 127.0.0.1:{member.port} refused"
    assert time.monotonic() - started < 0.5  # refused at once


def test_a_silent_member_costs_at_most_the_timeout() -> None:
    silent = FakeMember({"ruok": None})
    try:
        started = time.monotonic()
        quiet = probe(silent.host, timeout=0.3)
        assert quiet.answering is False and quiet.detail.endswith("within 0.3 s")
        assert time.monotonic() - started < 1.0
    finally:
        silent.close()


def test_srvr_when_ruok_is_not_whitelisted() -> None:
    srvr_only = FakeMember({"srvr": "Zookeeper version: 3.8.0\nMode: follower\n"})
    neither = FakeMember({})
    try:
        assert probe(srvr_only.host).answering is True and srvr_only.words == ["ruok", "srvr"]
        uncheckable = probe(neither.host)
        assert uncheckable.answering is None and "whitelist" in uncheckable.detail
    finally:
        srvr_only.close()
        neither.close()


def test_watch_reports_a_member_down_after_two_misses_and_up_at_once(member: FakeMember) -> None:
    port = member.port
    watch = MemberWatch([member.host], interval=60, active=lambda: True)
    watch.probe_once()
    assert [h.answering for h in watch.results()] == [True]
    member.close()
    watch.probe_once()
    assert watch.results() == []  # one miss: not settled either way
    watch.probe_once()
    [down] = watch.results()
    assert down.answering is False
    back = FakeMember({"ruok": "imok"}, port=port)  # the member runs again
    try:
        watch.probe_once()
        assert [h.answering for h in watch.results()] == [True]
    finally:
        back.close()
    watch.forget()
    assert watch.results() == []


def test_watch_probes_in_its_own_thread_only_while_active(member: FakeMember) -> None:
    acting = threading.Event()
    watch = MemberWatch([member.host], interval=0.05, active=acting.is_set)
    watch.start()
    try:
        time.sleep(0.3)
        assert member.words == [] and watch.results() == []
        acting.set()
        deadline = time.monotonic() + 5
        while not watch.results() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [h.answering for h in watch.results()] == [True]
    finally:
        watch.stop()


def test_findings_name_the_member_and_its_coordinator(tmp_path: Path) -> None:
    layout = LabLayout(tmp_path, nodes=4, coordinators=3, prefix="pvct", net_index=7)
    endpoint.new_api_key(layout)
    configs = {node: parse_config(node_config_data(layout, node)) for node in layout.node_names}
    assert configs["hv2"].zookeeper_member == "10.110.7.2:2181"
    assert configs["hv4"].zookeeper_member == ""  # not a coordinator
    nodes = [
        NodeRecord(name=node, static=NodeStatic(name=node, zookeeper_member=config.zookeeper_member))
        for node, config in configs.items()
    ]
    health = [
        MemberHealth("10.110.7.1:2181", True, "imok"),
        MemberHealth("10.110.7.2:2181", False, "connection to 10.110.7.2:2181 refused"),
        MemberHealth("10.110.7.3:2181", None, "allows neither ruok nor srvr"),
    ]
    [finding] = zookeeper_findings(health, nodes)
    assert (finding.kind, finding.subject) == (ZOOKEEPER_MEMBER_DOWN, "10.110.7.2:2181")
    assert finding.message.startswith("ZooKeeper member 10.110.7.2:2181 (on hv2) does not answer")
    assert finding.delta > 0
