"""Login sessions and the failed-login limiter, kept in the API process's memory.

``POST /login`` creates a :class:`Session`: the cookie carries only a random id (the
store keeps its SHA-256, never the id or the API key), and the session holds the key's
role, a CSRF token and an absolute expiry. ``POST /logout`` deletes it. A restart or a
primary failover starts an empty store: everyone logged in must log in again.

:class:`LoginLimiter` counts failed key checks per client address over a sliding
minute; an address over the limit is answered 429 until its oldest failure ages out.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

#: Bytes of randomness in a session id and in a CSRF token.
TOKEN_BYTES = 32
#: The window over which failed logins are counted (seconds).
LOGIN_WINDOW = 60.0
#: Client addresses the limiter remembers at most (the oldest is forgotten first).
MAX_TRACKED_ADDRESSES = 10_000
#: Live sessions kept at most (the oldest is dropped first).
MAX_SESSIONS = 10_000

Clock = Callable[[], float]


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A logged-in browser or script: the role its key granted, its CSRF token, its expiry."""

    role: str
    csrf_token: str
    expires: float


class SessionStore:
    """Sessions by the hash of their id; thread-safe; expired sessions are dropped on sight."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, role: str, lifetime: float) -> tuple[str, Session]:
        """A new session for ``role`` lasting ``lifetime`` seconds; returns (cookie id, session)."""
        session_id = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(role, secrets.token_urlsafe(TOKEN_BYTES), self._clock() + lifetime)
        with self._lock:
            self._expire()
            self._sessions[_digest(session_id)] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session named by a cookie id, or None."""
        if not session_id:
            return None
        key = _digest(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.expires <= self._clock():
                del self._sessions[key]
                return None
            return session

    def revoke(self, session_id: str | None) -> bool:
        """End a session; True if there was a live one."""
        if not session_id:
            return False
        with self._lock:
            return self._sessions.pop(_digest(session_id), None) is not None

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)

    def _expire(self) -> None:
        now = self._clock()
        for key in [key for key, session in self._sessions.items() if session.expires <= now]:
            del self._sessions[key]


class LoginLimiter:
    """At most ``attempts`` failed key checks per client address per :data:`LOGIN_WINDOW`."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, attempts: int) -> float:
        """Seconds until ``address`` may try again (0 when it may try now)."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                return 0.0
            while failures and failures[0] <= now - LOGIN_WINDOW:
                failures.popleft()
            if not failures:
                del self._failures[address]
                return 0.0
            if len(failures) < attempts:
                return 0.0
            return failures[-attempts] + LOGIN_WINDOW - now

    def failed(self, address: str) -> None:
        """Count a failed attempt from ``address``."""
        with self._lock:
            failures = self._failures.pop(address, None) or deque()
            failures.append(self._clock())
            self._failures[address] = failures  # most recent last
            while len(self._failures) > MAX_TRACKED_ADDRESSES:
                self._failures.popitem(last=False)
