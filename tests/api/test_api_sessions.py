"""Login sessions: an opaque cookie, server-side logout, CSRF on cookie writes, login rate limit,
and the optional protection of /metrics and /openapi.json."""

from __future__ import annotations

from pvc.api.auth import COOKIE, CSRF_HEADER
from tests.api.conftest import TOKENS

PREFIX = "/api/v1"
ADMIN = TOKENS["admin"]


def _login(client, key: str = ADMIN, **environ: str):
    return client.post(f"{PREFIX}/login", data={"token": key}, environ_base=environ)


def test_without_a_key_the_api_answers_401(api_factory):
    client, _ = api_factory(auth=True)
    for path in ("/status", "/node", "/vm", "/faults", "/tasks"):
        reply = client.get(PREFIX + path)
        assert reply.status_code == 401 and "X-Api-Key" in reply.json["message"], path


def test_the_cookie_is_an_opaque_id_with_strict_attributes(api_factory):
    client, _ = api_factory(auth=True)
    reply = _login(client)
    assert reply.status_code == 200 and reply.json["message"] == "Logged in"
    assert len(reply.json["csrf_token"]) >= 32
    header = reply.headers["Set-Cookie"]
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None and len(cookie.value) >= 32
    assert ADMIN not in header and ADMIN not in cookie.value
    assert "." not in cookie.value  # not a signed payload (Flask's cookie session has dots)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Max-Age=" in header
    assert "Secure" not in header  # TLS is off here
    assert client.get(f"{PREFIX}/status").status_code == 200


def test_the_cookie_is_secure_when_tls_is_on(api_factory):
    client, _ = api_factory(auth=True, ssl=True)
    assert "Secure" in _login(client).headers["Set-Cookie"]


def test_logout_revokes_the_session_on_the_server(api_factory):
    client, context = api_factory(auth=True)
    _login(client)
    stolen = client.get_cookie(COOKIE).value
    assert len(context.sessions) == 1
    assert client.post(f"{PREFIX}/logout").status_code == 200
    assert len(context.sessions) == 0
    client.set_cookie(COOKIE, stolen)  # replaying the old cookie does not work
    assert client.get(f"{PREFIX}/status").status_code == 401


def test_a_key_is_never_read_from_the_query_string(api_factory):
    client, context = api_factory(auth=True)
    reply = client.post(f"{PREFIX}/login", query_string={"token": ADMIN})
    assert reply.status_code == 400 and "never in the URL" in reply.json["message"]
    assert client.get_cookie(COOKIE) is None and len(context.sessions) == 0
    assert client.get(f"{PREFIX}/status", query_string={"token": ADMIN}).status_code == 401


def test_login_with_the_key_in_the_header(api_factory):
    client, _ = api_factory(auth=True)
    assert client.post(f"{PREFIX}/login", headers={"X-Api-Key": ADMIN}).status_code == 200
    assert client.post(f"{PREFIX}/login").status_code == 400  # no key at all


def test_cookie_writes_need_the_csrf_token(api_factory):
    client, context = api_factory(auth=True)
    csrf = _login(client).json["csrf_token"]
    forged = client.post(f"{PREFIX}/status", query_string={"state": "true"})
    assert forged.status_code == 403 and CSRF_HEADER in forged.json["message"]
    wrong = client.post(f"{PREFIX}/status", query_string={"state": "true"}, headers={CSRF_HEADER: "x" * 43})
    assert wrong.status_code == 403
    assert context.cluster.store.get_text("/config/maintenance") == "false"
    ok = client.post(f"{PREFIX}/status", query_string={"state": "true"}, headers={CSRF_HEADER: csrf})
    assert ok.status_code == 200
    assert client.get(f"{PREFIX}/status").status_code == 200  # reads need no token


def test_header_key_writes_need_no_csrf_token(api_factory):
    client, _ = api_factory(auth=True)
    reply = client.post(f"{PREFIX}/status", query_string={"state": "false"}, headers={"X-Api-Key": ADMIN})
    assert reply.status_code == 200


def test_failed_logins_are_limited_per_address(api_factory):
    client, _ = api_factory(auth=True, login_attempts=3)
    attacker = {"REMOTE_ADDR": "192.0.2.7"}
    for _ in range(3):
        assert _login(client, "wrong-" * 6, **attacker).status_code == 401
    limited = _login(client, "wrong-" * 6, **attacker)
    assert limited.status_code == 429 and "try again in" in limited.json["message"]
    assert _login(client, ADMIN, **attacker).status_code == 429  # even a right key, while limited
    header = client.get(f"{PREFIX}/status", headers={"X-Api-Key": ADMIN}, environ_base=attacker)
    assert header.status_code == 429
    assert _login(client, ADMIN, REMOTE_ADDR="192.0.2.8").status_code == 200  # others are not limited


def test_metrics_and_openapi_are_open_by_default(api_factory):
    client, _ = api_factory(auth=True)
    assert client.get(f"{PREFIX}/metrics").status_code == 200
    assert client.get(f"{PREFIX}/openapi.json").status_code == 200


def test_metrics_and_openapi_can_require_a_key(api_factory):
    client, _ = api_factory(auth=True, protect_metrics=True, protect_openapi=True)
    for path in ("/metrics", "/metrics/health", "/metrics/resource", "/openapi.json"):
        assert client.get(PREFIX + path).status_code == 401, path
        reply = client.get(PREFIX + path, headers={"X-Api-Key": TOKENS["read-only"]})
        assert reply.status_code == 200, path


def test_openapi_documents_login_body_and_not_query(api):
    client, _ = api
    login = client.get(f"{PREFIX}/openapi.json").json["paths"][f"{PREFIX}/login"]["post"]
    assert all(p["name"] != "token" for p in login["parameters"])
    form = login["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert "token" in form["properties"]
