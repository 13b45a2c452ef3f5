"""Self-fencing: when a node cut off from ZooKeeper stops itself, and when it must not."""

import os

import pytest

from pvc.node.self_fence import SelfFence, Watchdog
from tests.helpers import ManualClock

MEMBERS = ["10.0.0.1:2181", "10.0.0.2:2181", "10.0.0.3:2181"]


class FakeWatchdog:
    def __init__(self) -> None:
        self.pets = 0
        self.abandoned = False
        self.disarmed = False

    def pet(self) -> None:
        self.pets += 1

    def abandon(self) -> None:
        self.abandoned = True

    def disarm(self) -> None:
        self.disarmed = True


class Node:
    """A self-fence watcher whose clock, last confirmed write and reachable members the test sets."""

    def __init__(self, suicide_after: float = 3.0) -> None:
        self.clock = ManualClock(100.0)
        self.confirmed = 100.0
        self.up = set(MEMBERS)
        self.fenced: list[str] = []
        self.watchdog = FakeWatchdog()
        self.watch = SelfFence(
            suicide_after,
            MEMBERS,
            confirmed_at=lambda: self.confirmed,
            fence=self.fenced.append,
            watchdog=self.watchdog,
            reachable=lambda member: member in self.up,
            monotonic=self.clock,
        )


def test_a_node_that_reaches_no_member_fences_itself_after_suicide_after():
    node = Node()
    node.up = {MEMBERS[0]}  # its own member only: the minority side of a partition
    node.clock.now += 3.0
    assert not node.watch.check()  # exactly suicide_after: not yet
    assert node.watchdog.pets == 1
    node.clock.now += 0.01
    assert node.watch.check()
    assert len(node.fenced) == 1 and "1 of 3 members reachable" in node.fenced[0]
    assert node.watchdog.abandoned
    node.clock.now += 10
    assert node.watch.check() and len(node.fenced) == 1  # once


def test_a_slow_quorum_that_still_accepts_connections_fences_nobody():
    """A leader election or a stalled fsync: writes wait everywhere, members still answer."""
    node = Node()
    node.up = set(MEMBERS[:2])
    node.clock.now += 60
    assert not node.watch.check()
    assert node.fenced == []
    assert node.watchdog.pets == 1  # the node is not hung: the watchdog is petted


def test_writes_confirmed_in_time_keep_the_node_up_whatever_the_members_say():
    node = Node()
    node.up = set()
    for _ in range(10):
        node.clock.now += 1.0
        node.confirmed = node.clock.now - 0.5
        assert not node.watch.check()
    assert node.fenced == []


def test_self_fencing_off_only_pets_the_watchdog():
    node = Node(suicide_after=0)
    node.up = set()
    node.clock.now += 1000
    assert not node.watch.check()
    assert node.watchdog.pets == 1


def test_a_clean_stop_disarms_the_watchdog_and_a_self_fence_does_not():
    node = Node()
    node.watch.stop()
    assert node.watchdog.disarmed
    fenced = Node()
    fenced.up = set()
    fenced.clock.now += 5
    fenced.watch.check()
    fenced.watch.stop()
    assert fenced.watchdog.abandoned and not fenced.watchdog.disarmed


def test_a_missing_watchdog_device_is_reported_not_fatal(tmp_path, caplog):
    assert Watchdog.open(tmp_path / "watchdog", 5) is None
    assert "unavailable" in caplog.text
    assert Watchdog.open(None, 5) is None


def test_a_watchdog_is_written_to_and_closed_with_the_magic_character(tmp_path, caplog):
    device = tmp_path / "watchdog"
    device.write_bytes(b"")
    watchdog = Watchdog.open(device, 5)
    assert watchdog is not None and watchdog.timeout is None  # a plain file takes no ioctl
    watchdog.pet()
    watchdog.disarm()
    assert device.read_bytes() == b"\0V"
    with pytest.raises(OSError):
        os.fstat(watchdog._fd)


def stalling(stall_after: float | None = 4.0) -> tuple[Node, list[float]]:
    """A node whose peers' keepalives advance at the moments in the returned list."""
    node = Node()
    progress: list[float] = []
    node.watch.stall_after = stall_after
    node.watch.stall_evidence = 2.0
    node.watch.peers_progress_since = lambda since: min((t for t in progress if t > since), default=None)
    return node, progress


def test_a_stuck_daemon_fences_itself_when_a_failed_fence_would_still_recover_its_vms():
    """Its own writes stop, its peers' go on (every member answers): peers will declare it
    dead and, with failed_fence: migrate, start its VMs even if its fence fails."""
    node, progress = stalling()
    for second in range(1, 5):
        progress.append(100.0 + second - 0.5)
        node.clock.now = 100.0 + second
        assert not node.watch.check()  # not yet stall_after without a confirmed write
    node.clock.now += 0.1
    assert node.watch.check()
    assert "daemon is stuck" in node.fenced[0] and node.watchdog.abandoned


def test_a_quorum_slow_for_everyone_is_no_stuck_daemon():
    node, progress = stalling()
    node.clock.now += 10  # no peer's keepalive advanced either
    assert not node.watch.check()
    progress.append(node.clock.now - 0.5)  # the quorum is back: peers' writes first ...
    assert not node.watch.check()  # ... then this node's, well within stall_evidence
    node.confirmed = node.clock.now
    node.clock.now += 1
    assert not node.watch.check() and node.fenced == []


def test_without_failed_fence_migrate_a_stuck_daemon_is_left_to_its_fence():
    node, progress = stalling(stall_after=None)
    progress.extend(100.0 + second for second in range(1, 30))
    node.clock.now += 30
    assert not node.watch.check() and node.fenced == []
