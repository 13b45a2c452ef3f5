"""Request helpers of the provisioner's storage tests (their fixtures are in the conftest)."""

from __future__ import annotations

from tests.helpers import wait_for
from tests.storage.api_harness import PREFIX


def call(client, method: str, path: str, **data):
    reply = client.open(f"{PREFIX}{path}", method=method, data=data)
    return reply.status_code, reply.get_json()


def ok(client, method: str, path: str, **data):
    status, body = call(client, method, path, **data)
    assert status == 200, (method, path, status, body)
    return body


def create(client, name: str, profile_name: str = "web", **data) -> dict:
    status, body = call(client, "POST", "/provisioner/create", name=name, profile=profile_name, **data)
    assert status == 202, body
    return wait_for(
        lambda: (
            (s := call(client, "GET", f"/tasks/{body['task_id']}")[1])["state"] in ("SUCCESS", "FAILURE")
            and s
        ),
        60,
    )
