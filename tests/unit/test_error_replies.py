"""How errors a client may cause read to it: status and message."""

from __future__ import annotations

from pvc.cluster.errors import ClusterError, NotFoundError, client_reply
from pvc.db.errors import DatabaseConflict, DatabaseUnavailable
from pvc.errors import PVCError
from pvc.state.errors import ConflictError, StateError


def test_each_error_has_its_status():
    assert client_reply(ClusterError("bad")) == (400, "bad")
    assert client_reply(NotFoundError("none"))[0] == 404
    assert client_reply(ConflictError("raced"))[0] == 409
    assert client_reply(StateError("down"))[0] == 503
    status, message = client_reply(DatabaseConflict('duplicate key value violates unique constraint "uq_x"'))
    assert status == 409 and "retry it" in message
    status, message = client_reply(DatabaseUnavailable("no member"))
    assert status == 503 and "provisioner database is unavailable: no member" in message
    assert client_reply(PVCError("a bug")) is None  # the caller answers 500
