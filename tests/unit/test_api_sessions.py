"""The session store and the failed-login limiter, on a fake clock."""

from __future__ import annotations

from pvc.api.sessions import LOGIN_WINDOW, LoginLimiter, SessionStore
from tests.helpers import ManualClock


def test_sessions_expire_and_store_no_id():
    clock = ManualClock()
    store = SessionStore(clock)
    session_id, session = store.create("admin", lifetime=60)
    assert store.get(session_id) == session and session.role == "admin"
    assert session_id not in repr(store._sessions)  # only its hash is kept
    clock.now += 59
    assert store.get(session_id) is not None
    clock.now += 2
    assert store.get(session_id) is None and len(store) == 0


def test_revoke_and_unknown_ids():
    store = SessionStore()
    session_id, _ = store.create("read-only", lifetime=60)
    assert store.get("not-an-id") is None and store.get(None) is None
    assert store.revoke(session_id) is True
    assert store.revoke(session_id) is False
    assert store.get(session_id) is None


def test_limiter_counts_failures_over_a_sliding_minute():
    clock = ManualClock()
    limiter = LoginLimiter(clock)
    for _ in range(3):
        assert limiter.retry_after("a", 3) == 0
        limiter.failed("a")
        clock.now += 1
    assert limiter.retry_after("a", 3) == LOGIN_WINDOW - 3
    assert limiter.retry_after("b", 3) == 0
    clock.now += LOGIN_WINDOW - 3  # the first failure ages out
    assert limiter.retry_after("a", 3) == 0
