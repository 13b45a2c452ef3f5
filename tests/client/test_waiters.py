"""Waiting through the API without any display: tasks, node states, followed logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pvc.client import waiters
from pvc.client.connections import Connection
from pvc.client.errors import ApiError, ApiUnreachable, TaskTimeout
from pvc.client.http import ApiClient
from pvc.client.waiters import unseen_lines
from tests.cli.fakeapi import API_KEY, FakeApi, serve


@pytest.fixture
def fake_api() -> FakeApi:
    """The fake API's state (not yet served)."""
    return FakeApi()


@pytest.fixture
def client(fake_api: FakeApi) -> Iterator[ApiClient]:
    """A client of the served fake API."""
    with serve(fake_api) as port:
        yield ApiClient(Connection(name="test", host="127.0.0.1", port=port, api_key=API_KEY))


def test_api_wait_until_it_answers(client: ApiClient, fake_api: FakeApi) -> None:
    fake_api.fail_with = [503, 503, 503]  # a first GET (tried three times) is refused, a second answers
    waiters.wait_for_api(client, 5)
    assert len(fake_api.calls("GET", "/")) == 4
    down = ApiClient(Connection(name="down", host="127.0.0.1", port=1))
    with pytest.raises(
        ApiUnreachable, match=r"The API at http://127\.0\.0\.1:1/api/v1 did not answer within 0\.1 s"
    ):
        waiters.wait_for_api(down, 0.1)


def _running(current: int, status: str) -> dict[str, Any]:
    return {"state": "RUNNING", "current": current, "total": 3, "status": status}


def test_task_progress_from_running_to_finished(client: ApiClient, fake_api: FakeApi) -> None:
    fake_api.tasks["t1"] = [
        {"state": "PENDING", "status": "Pending job start"},
        _running(1, "Preparing disk"),
        _running(2, "Creating OSD"),
        {"state": "SUCCESS", "current": 3, "total": 3, "status": "Added OSD 4 on hv1"},
    ]
    seen: list[dict[str, Any]] = []
    task = waiters.wait_for_task(client, "t1", on_progress=seen.append)
    assert waiters.task_outcome(task) == ("SUCCESS", "Added OSD 4 on hv1")
    assert [step["status"] for step in seen] == ["Preparing disk", "Creating OSD", "Added OSD 4 on hv1"]
    assert len(fake_api.calls("GET", "/tasks/t1")) == 4


def test_task_never_seen_running_reports_no_progress(client: ApiClient, fake_api: FakeApi) -> None:
    fake_api.tasks["t2"] = [{"state": "PENDING"}, {"state": "FAILURE", "status": "Device in use"}]
    seen: list[dict[str, Any]] = []
    task = waiters.wait_for_task(client, "t2", on_progress=seen.append)
    assert waiters.task_outcome(task) == ("FAILURE", "Device in use") and seen == []


def test_task_timeout_and_unknown_task(client: ApiClient, fake_api: FakeApi) -> None:
    fake_api.tasks["slow"] = [_running(1, "Working")]
    with pytest.raises(TaskTimeout, match=r"Task slow did not finish within 0\.1 s"):
        waiters.wait_for_task(client, "slow", timeout=0.1, poll_interval=0.01)
    with pytest.raises(ApiError, match="No task with ID nope found"):
        waiters.wait_for_task(client, "nope")


def test_node_state_wait_counts_polls(client: ApiClient, fake_api: FakeApi) -> None:
    assert client.post("/node/hv2/coordinator-state", params={"state": "primary"}).status == 200
    polls: list[int] = []
    value = waiters.wait_for_node_state(
        client, "hv2", "coordinator_state", "takeover", "primary", on_poll=polls.append
    )
    assert value == "primary" and polls == [1, 2]
    assert len(fake_api.calls("GET", "/node/hv2")) == 3


def test_node_state_wait_ends_after_grace_polls(client: ApiClient, fake_api: FakeApi) -> None:
    value = waiters.wait_for_node_state(client, "hv1", "domain_state", "flush", "flushed")
    assert value == "ready"
    assert len(fake_api.calls("GET", "/node/hv1")) == waiters.NODE_GRACE_POLLS


def test_follow_log_emits_only_new_lines() -> None:
    batches = [["a", "b", "c"], ["b", "c", "d"], ["c", "d", "e", "f"]]
    asked: list[int] = []

    def fetch(count: int) -> list[str]:
        asked.append(count)
        return batches.pop(0) if len(batches) > 1 else batches[0]

    emitted: list[str] = []
    waiters.follow_log(fetch, 2, emitted.append, max_polls=3)
    assert emitted == ["b", "c", "d", "e", "f"]
    assert asked == [2, waiters.FOLLOW_WINDOW, waiters.FOLLOW_WINDOW, waiters.FOLLOW_WINDOW]


def test_unseen_lines() -> None:
    assert unseen_lines(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert unseen_lines(["a", "b"], ["x", "a", "b"]) == []
    assert unseen_lines(["b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert unseen_lines([], ["a"]) == ["a"]
    assert unseen_lines(["q"], ["a", "b"]) == ["a", "b"]
    assert unseen_lines(["a", "b", "c"], ["b", "c", "d"]) == ["d"]
