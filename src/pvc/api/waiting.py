"""``wait=true`` within bounds: a request is held at most ``api.limits.wait_timeout`` seconds,
and at most ``waiting_slots`` requests are held at once, so waiting clients never take
every thread from the others.

A wait that runs out, or that finds every slot taken, is answered 202 with a message: the
change was made and goes on; the client polls the object's state to see it finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Response, jsonify

from pvc.cluster.errors import NotYetDone

#: The reply a route taking ``wait`` adds to its documented ones.
WAIT_RESPONSES = {"202": "Accepted: the wait ended before the change did; it goes on (poll)"}


class WaitGate:
    """Counts the requests being held by ``wait=true`` and bounds how long each is held."""

    def __init__(self, slots: int, timeout: float) -> None:
        self.slots = slots
        self.timeout = timeout
        self._free = threading.BoundedSemaphore(slots) if slots > 0 else None

    @contextmanager
    def admit(self) -> Iterator[bool]:
        """Whether this request may wait (a slot was free); the slot is held until the block ends."""
        admitted = self._free is not None and self._free.acquire(blocking=False)
        try:
            yield admitted
        finally:
            if admitted:
                assert self._free is not None
                self._free.release()


def waited(gate: WaitGate, wait: bool, change: Callable[[bool, float], str], poll: str) -> Response:
    """The reply to a change made by ``change(wait, timeout)``, which returns its message.

    Without ``wait`` (or without a free slot) the change is made without waiting; with it,
    a :class:`NotYetDone` after ``gate.timeout`` seconds becomes a 202 telling the client
    to poll ``GET <poll>``.
    """
    if not wait:
        return jsonify(message=change(False, 0.0))
    with gate.admit() as admitted:
        if not admitted:
            message = change(False, 0.0)
            reply = jsonify(
                message=f"{message}; not waited for: {gate.slots} requests are waiting already; "
                f"it goes on: poll GET {poll} to see it finish"
            )
            reply.status_code = 202
            return reply
        try:
            return jsonify(message=change(True, gate.timeout))
        except NotYetDone as pending:
            reply = jsonify(
                message=f"{pending.request}; not finished after {pending.waited:g} s waiting for "
                f"{pending.what}; it goes on: poll GET {poll} to see it finish"
            )
            reply.status_code = 202
            return reply
