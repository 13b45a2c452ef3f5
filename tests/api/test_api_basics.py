"""Framework behaviour: errors, arguments, auth and roles, OpenAPI."""

from __future__ import annotations

import pytest

from tests.api.conftest import TOKENS

PREFIX = "/api/v1"


def test_root_and_unknown_paths(api):
    client, _ = api
    assert client.get(f"{PREFIX}/").json == {"message": "PVC API version 1.0"}
    for response in (client.get(f"{PREFIX}/nope"), client.delete(f"{PREFIX}/status")):
        assert response.status_code in (404, 405)
        assert isinstance(response.json["message"], str)


def test_arguments_from_query_or_form_case_insensitive_booleans(api):
    client, context = api
    assert client.post(f"{PREFIX}/status", query_string={"state": "true"}).status_code == 200
    assert context.cluster.store.get_text("/config/maintenance") == "true"
    assert client.post(f"{PREFIX}/status", data={"state": "false"}).status_code == 200
    assert context.cluster.store.get_text("/config/maintenance") == "false"
    bad = client.post(f"{PREFIX}/node/x/domain-state", data={"state": "flush", "wait": "perhaps"})
    assert bad.status_code == 400 and "true or false" in bad.json["message"]


@pytest.mark.parametrize(
    ("method", "path", "params", "words"),
    [
        ("post", "/status", {}, "'state' is required"),
        ("post", "/status", {"state": "sideways"}, "'state' must be true or false"),
        ("get", "/node/nosuch/log", {"lines": "ten"}, "must be an integer"),
        ("get", "/node/nosuch/log", {"lines": "0"}, "at least 1"),
        ("get", "/faults", {"sort_key": "colour"}, "must be one of"),
        ("post", "/node/hv1/coordinator-state", {"state": "boss"}, "must be one of primary, secondary"),
        ("post", "/restore", {"cluster_data": "{}"}, "'yes-i-really-mean-it' is required"),
        ("post", "/initialize", {}, "'yes-i-really-mean-it' is required"),
    ],
)
def test_bad_arguments_are_400_with_a_message(api, method, path, params, words):
    client, _ = api
    response = getattr(client, method)(PREFIX + path, query_string=params)
    assert response.status_code == 400
    assert words in response.json["message"]


def test_keys_and_roles(api_factory):
    client, context = api_factory(auth=True)
    assert client.get(f"{PREFIX}/").status_code == 200  # unauthenticated path
    assert client.get(f"{PREFIX}/status/primary_node").status_code == 200
    missing = client.get(f"{PREFIX}/status")
    assert missing.status_code == 401 and "X-Api-Key" in missing.json["message"]
    wrong = client.get(f"{PREFIX}/status", headers={"X-Api-Key": "guess"})
    assert wrong.status_code == 401 and "not valid" in wrong.json["message"]
    for role, token in TOKENS.items():
        assert client.get(f"{PREFIX}/status", headers={"X-Api-Key": token}).status_code == 200, role
    reader = client.post(
        f"{PREFIX}/status", query_string={"state": "true"}, headers={"X-Api-Key": TOKENS["read-only"]}
    )
    assert reader.status_code == 403 and "read-only" in reader.json["message"]
    assert context.cluster.store.get_text("/config/maintenance") == "false"  # nothing written
    operator = client.post(
        f"{PREFIX}/restore",
        query_string={"cluster_data": "{}", "yes-i-really-mean-it": "yes"},
        headers={"X-Api-Key": TOKENS["operator"]},
    )
    assert operator.status_code == 403
    assert (
        client.post(
            f"{PREFIX}/status", query_string={"state": "true"}, headers={"X-Api-Key": TOKENS["operator"]}
        ).status_code
        == 200
    )


def test_session_login_and_logout(api_factory):
    client, _ = api_factory(auth=True)
    assert client.post(f"{PREFIX}/login", data={"token": "nope"}).status_code == 401
    assert client.post(f"{PREFIX}/login", data={"token": TOKENS["read-only"]}).status_code == 200
    assert client.get(f"{PREFIX}/status").status_code == 200
    assert client.post(f"{PREFIX}/logout").status_code == 200
    assert client.get(f"{PREFIX}/status").status_code == 401


def test_openapi_lists_every_route_with_its_arguments(api):
    client, _ = api
    from pvc.api.resources import GROUPS

    spec = client.get(f"{PREFIX}/openapi.json").json
    assert spec["openapi"].startswith("3.")
    declared = {(route.method.lower(), route.path) for group in GROUPS for route in group.routes}
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert len(documented) == len(declared)
    node_post = spec["paths"][f"{PREFIX}/node/{{node}}/coordinator-state"]["post"]
    state = next(p for p in node_post["parameters"] if p["name"] == "state")
    assert state["required"] and state["schema"]["enum"] == ["primary", "secondary"]
    assert spec["paths"][f"{PREFIX}/status/primary_node"]["get"]["security"] == []


def _all_routes():
    from pvc.api.resources import GROUPS

    return [route for group in GROUPS for route in group.routes]


def _concrete(path: str) -> str:
    import re

    return PREFIX + re.sub(r"<[^>]+>", "x1", path)


@pytest.mark.parametrize(
    "route", [r for r in _all_routes() if r.role is not None], ids=lambda r: f"{r.method} {r.path}"
)
def test_every_authenticated_route_refuses_a_missing_or_wrong_key(api_factory, route):
    client, _ = api_factory(auth=True)
    for headers in ({}, {"X-Api-Key": "wrong"}):
        response = client.open(_concrete(route.path), method=route.method, headers=headers)
        assert response.status_code == 401, (route.method, route.path, response.json)
        assert isinstance(response.json["message"], str)


@pytest.mark.parametrize(
    "route",
    [r for r in _all_routes() if r.role in ("operator", "admin")],
    ids=lambda r: f"{r.method} {r.path}",
)
def test_every_changing_route_refuses_a_read_only_key(api_factory, route):
    client, context = api_factory(auth=True)
    before = context.cluster.store.get_text("/config/maintenance")
    response = client.open(
        _concrete(route.path), method=route.method, headers={"X-Api-Key": TOKENS["read-only"]}
    )
    assert response.status_code == 403, (route.method, route.path, response.json)
    assert context.cluster.store.get_text("/config/maintenance") == before


def test_no_route_changes_state_with_a_read_only_role():
    for route in _all_routes():
        if route.method != "GET" and route.path not in ("/login", "/logout"):
            assert route.role in ("operator", "admin"), (route.method, route.path)
