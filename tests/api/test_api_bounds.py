"""Bounded requests: body sizes, the ``limit`` filter's cost, ``wait=true`` holding time.

Every request carries an admin key (or a read-only one where that is the point), so the
tests hold whether or not the fixtures' API requires authentication.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from dataclasses import replace

import pytest

from pvc.api.app import create_app
from pvc.config import ApiLimits
from pvc.state import paths
from tests.api.conftest import TOKENS
from tests.helpers import wait_for

PREFIX = "/api/v1"
ADMIN = {"X-Api-Key": TOKENS["admin"]}
READER = {"X-Api-Key": TOKENS["read-only"]}


class CountingBody(io.RawIOBase):
    """A request body of ``size`` bytes that counts what the server reads of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.served = 0
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: 0, 1: self.position, 2: self.size}[whence] + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self.size - self.position))
        buffer[:count] = b"a" * count
        self.served += count
        self.position += count
        return count


def limited(api_factory, auth: bool = False, **limits):
    """A test client of an app whose ``api.limits`` are ``limits``."""
    _, context = api_factory(auth=auth)
    settings = context.settings.model_copy(update={"limits": ApiLimits(**limits)})
    context = replace(context, settings=settings)
    return create_app(context).test_client(), context


def post_body(client, path: str, body: CountingBody, *, declared: bool = True, headers=None):
    return client.post(
        PREFIX + path,
        input_stream=body,
        content_length=body.size if declared else None,
        content_type="multipart/form-data; boundary=xyz",
        headers=headers or ADMIN,
    )


def test_a_route_without_arguments_never_reads_its_body(api_factory):
    client, _ = limited(api_factory, auth=True, max_body=1024 * 1024)
    huge = CountingBody(300 * 1024 * 1024)
    refused = post_body(client, "/logout", huge, headers={})  # no key: /logout needs none
    assert refused.status_code == 413 and "larger than the 1048576 bytes" in refused.json["message"]
    assert huge.served == 0
    small = CountingBody(64 * 1024)
    assert post_body(client, "/logout", small, headers={}).status_code == 200
    assert small.served == 0  # accepted, never parsed


def test_a_declared_body_over_the_limit_is_refused_before_authentication(api_factory):
    client, context = limited(api_factory, auth=True, max_body=64 * 1024)
    body = CountingBody(64 * 1024 + 1)
    refused = post_body(client, "/status", body, headers={})
    assert refused.status_code == 413 and isinstance(refused.json["message"], str)
    assert body.served == 0
    assert context.cluster.store.get_text("/config/maintenance") == "false"


def test_an_undeclared_body_is_read_only_up_to_the_limit(api_factory):
    client, _ = limited(api_factory, max_body=64 * 1024)
    body = CountingBody(10 * 1024 * 1024)
    refused = client.post(
        PREFIX + "/status",
        input_stream=body,
        content_type="application/x-www-form-urlencoded",
        headers=ADMIN,
        environ_overrides={"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True},
    )
    assert refused.status_code == 413 and "65536" in refused.json["message"], (refused.json, body.served)
    assert body.served <= 64 * 1024 + 1  # read up to the limit, no further
    exact = client.post(
        PREFIX + "/status",
        input_stream=io.BytesIO(b"state=true&" + b"x" * (64 * 1024 - 11)),
        content_type="application/x-www-form-urlencoded",
        headers=ADMIN,
        environ_overrides={"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True},
    )
    assert exact.status_code == 200, exact.json  # exactly the limit is allowed


def test_forms_up_to_the_limit_still_work(api_factory):
    client, context = limited(api_factory, max_body=1024 * 1024)
    padding = "x" * (600 * 1024)  # a multipart text field above Flask's own 500 kB default
    response = client.post(
        PREFIX + "/status",
        data={"state": "true", "padding": (io.BytesIO(padding.encode()), "p")},
        headers=ADMIN,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    assert context.cluster.store.get_text("/config/maintenance") == "true"


def test_default_body_limit_is_set(api):
    client, context = api
    assert client.application.config["MAX_CONTENT_LENGTH"] == context.settings.limits.max_body + 1 > 1


# --- the limit filter ----------------------------------------------------------------------


def test_a_pathological_limit_costs_nothing_and_a_long_one_is_refused(api_factory):
    client, context = api_factory(auth=True)
    store = context.cluster.store
    for _ in range(20):  # UUID-like names: a backtracking engine explores 2**24 splits of each
        name = str(uuid.uuid4())
        store.client.create(f"{paths.NODES}/{name}", b"", makepath=True)
    wait_for(lambda: len(context.cluster.cache.node_names()) == 20)
    started = time.perf_counter()
    reply = client.get(
        f"{PREFIX}/node", query_string={"limit": "^(?:[0-9a-f-]|[0-9a-f-]){0,24}#$"}, headers=READER
    )
    assert reply.status_code == 200 and reply.json == []
    assert time.perf_counter() - started < 0.5
    long = client.get(f"{PREFIX}/vm", query_string={"limit": "a" * 257}, headers=READER)
    assert long.status_code == 400 and "at most 256" in long.json["message"]
    lookaround = client.get(f"{PREFIX}/storage/ceph/pool", query_string={"limit": "(?=x)"}, headers=READER)
    assert lookaround.status_code == 400 and "regular expression" in lookaround.json["message"]


# --- wait=true -----------------------------------------------------------------------------


@pytest.fixture
def idle_node(cluster):
    """A node known to the cluster whose daemon has stopped: nothing will carry out its flush."""
    node = cluster("n1", ["n1"])
    node.stop()
    return "n1"


def flush(client, node: str):
    return client.post(
        f"{PREFIX}/node/{node}/domain-state", data={"state": "flush", "wait": "true"}, headers=ADMIN
    )


def test_a_wait_is_answered_202_once_its_time_is_up(api_factory, idle_node):
    client, context = limited(api_factory, wait_timeout=0.5)
    wait_for(lambda: context.cluster.cache.node(idle_node) is not None)
    started = time.monotonic()
    reply = flush(client, idle_node)
    took = time.monotonic() - started
    assert reply.status_code == 202, reply.json
    assert (
        "Flushing node 'n1'" in reply.json["message"]
        and "poll GET /node/n1/domain-state" in reply.json["message"]
    )
    assert 0.5 <= took < 2.0
    assert context.cluster.cache.domain_state(idle_node)[0] == "flush"  # the request stands


def test_waits_beyond_the_slots_are_not_held(api_factory, idle_node):
    client, context = limited(api_factory, wait_timeout=1.5, threads=4, max_waiting=1)
    wait_for(lambda: context.cluster.cache.node(idle_node) is not None)
    first: list = []
    holder = threading.Thread(target=lambda: first.append(flush(client.application.test_client(), idle_node)))
    holder.start()
    wait_for(lambda: context.wait_gate._free._value == 0, 5)  # the slot is taken
    started = time.monotonic()
    second = flush(client, idle_node)
    assert time.monotonic() - started < 0.5
    assert second.status_code == 202 and "1 requests are waiting already" in second.json["message"]
    holder.join()
    assert first[0].status_code == 202 and "not finished after 1.5 s" in first[0].json["message"]


def test_a_wait_ends_as_soon_as_the_cache_shows_the_change(api):
    _, context = api
    cache, store = context.cluster.cache, context.cluster.store
    path = f"{paths.CONFIG}/wake-test"
    threading.Timer(0.3, lambda: store.client.create(path, b"x")).start()
    started = time.monotonic()
    assert cache.wait_until(lambda: cache.data(path), timeout=5) == b"x"
    assert time.monotonic() - started < 0.3 + 0.2  # woken by the change, not a periodic recheck
    assert cache.wait_until(lambda: False, timeout=0.2) is None
