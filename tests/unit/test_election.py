import pytest

from pvc.node.election import HANDOVER_GRACE, Action, ElectionView, decide
from pvc.state.states import DaemonState


def view(**overrides) -> ElectionView:
    values = {
        "me": "n1",
        "is_coordinator": True,
        "daemon_state": DaemonState.RUN,
        "shutting_down": False,
        "acting": False,
        "holding": False,
        "holder": None,
        "requested": "none",
        "eligible": frozenset({"n1", "n2", "n3"}),
    }
    values.update(overrides)
    return ElectionView(**values)


@pytest.mark.parametrize(
    ("overrides", "action", "words"),
    [
        ({"is_coordinator": False}, Action.BE_CLIENT, "hypervisor"),
        ({}, Action.TAKE_OVER, "contending"),
        ({"requested": "n1"}, Action.TAKE_OVER, "contending"),
        ({"holder": "n2"}, Action.BE_SECONDARY, "following primary n2"),
        ({"holder": "n1"}, Action.CLEAR_ORPHAN, "do not hold it"),
        ({"daemon_state": DaemonState.INIT}, Action.BE_SECONDARY, "daemon is init"),
        ({"shutting_down": True}, Action.BE_SECONDARY, "not contending"),
        ({"requested": "n2"}, Action.NONE, "waiting for n2"),
        ({"requested": "n2", "handover_waited": HANDOVER_GRACE + 1}, Action.TAKE_OVER, "contending"),
        ({"requested": "n9"}, Action.TAKE_OVER, "contending"),
        ({"holding": True}, Action.RELEASE_LEASE, "releasing"),
        ({"acting": True, "holding": True, "requested": "n1"}, Action.NONE, "I am the primary"),
        ({"acting": True, "holding": True, "requested": "n2"}, Action.RELINQUISH, "to n2"),
        ({"acting": True, "holding": True, "requested": "n9"}, Action.RESET_REQUEST, "'n9'"),
        ({"acting": True, "holding": True, "requested": "none"}, Action.RESET_REQUEST, "ignoring"),
        ({"acting": True, "holding": True, "shutting_down": True}, Action.RELINQUISH, "stopping"),
    ],
)
def test_decision_ladder(overrides, action, words):
    decision = decide(view(**overrides))
    assert decision.action is action
    assert words in decision.reason


def test_relinquish_targets_requested_node_and_shutdown_targets_none():
    assert decide(view(acting=True, requested="n3")).target == "n3"
    assert decide(view(acting=True, requested="n1", shutting_down=True)).target == "none"


def test_takeover_carries_stale_primaries():
    decision = decide(view(stale_primaries=("n2",)))
    assert decision.stale_primaries == ("n2",)


def test_primary_lease_expires_without_quorum_confirmation():
    from pvc.node.election import PrimaryRole
    from pvc.node.phases import PrimaryPhases

    role = PrimaryRole.__new__(PrimaryRole)  # no store needed for the timing rule
    role.acting, role.confirmed_at = True, 100.0
    assert not role.lease_expired(4.0, now=102.9)
    assert role.lease_expired(4.0, now=103.1)
    role.confirm(103.0)
    assert not role.lease_expired(4.0, now=103.1)
    role.confirm(50.0)  # an older confirmation never moves the lease back
    assert role.confirmed_at == 103.0
    role.acting = False
    assert not role.lease_expired(4.0, now=1000.0)
    assert PrimaryPhases().names == []
