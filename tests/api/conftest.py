"""The API over a real ZooKeeper: Flask's test client, nodes run by real NodeLoops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from pvc.api.app import create_app
from pvc.api.context import ApiContext
from pvc.client import connections
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.config import ApiSection
from pvc.domain_xml.policy import XmlPolicy
from pvc.state.cache import ClusterCache
from pvc.state.schema import ensure_schema
from tests.helpers import wait_for
from tests.integration.conftest import (  # noqa: F401
    cluster,
    make_store,
    store,
    test_driver_uri,
    zk_hosts,
    zk_server,
)
from tests.integration.postgres_fixtures import db_name, pg_server, provisioner_db  # noqa: F401

TOKENS = {
    "admin": "admin-key-0123456789abcdef0123456789",
    "operator": "operator-key-0123456789abcdef01234567",
    "read-only": "reader-key-0123456789abcdef0123456789",
}


def settings(auth: bool, ssl: bool = False, **authentication: object) -> ApiSection:
    """API settings with the three test keys (``authentication``: more of that section's keys)."""
    tls = {"enabled": True, "certificate": "/dev/null", "private_key": "/dev/null"} if ssl else {}
    return ApiSection.model_validate(
        {
            "authentication": {"enabled": auth, "source": "token", **authentication},
            "token": [{"token": token, "role": role} for role, token in TOKENS.items()],
            "ssl": tls,
        }
    )


@pytest.fixture
def api_factory(make_store, tmp_path):  # noqa: F811
    caches = []

    def build(
        auth: bool = False, ssl: bool = False, xml_policy: XmlPolicy | None = None, **authentication: object
    ):
        api_store = make_store()
        ensure_schema(api_store)
        cache = ClusterCache(api_store, API_ROOTS)
        cache.start()
        assert cache.wait_ready(10)
        caches.append(cache)
        context = ApiContext(
            cluster=Cluster(api_store, cache),
            settings=settings(auth, ssl, **authentication),
            cluster_name="test",
            upstream_ip="10.100.0.250",
            xml_policy=xml_policy or XmlPolicy(),
        )
        return create_app(context).test_client(), context

    yield build
    for cache in caches:
        cache.close()


@pytest.fixture
def api(api_factory):
    return api_factory()


def start_hypervisor_nodes(cluster, context: ApiContext, names: list[str], driver_uri: str) -> None:  # noqa: F811
    """Node daemons ``names`` on libvirt's test driver; returns once the API sees every one run."""
    for index, name in enumerate(names, start=1):
        cluster(name, names, index=index, hypervisor_uri=driver_uri, shutdown_timeout=1.0)
    wait_for(lambda: [n.daemon_state for n in context.cluster.cache.nodes()] == ["run"] * len(names))


@contextmanager
def served_with_cli(context: ApiContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The API served over HTTP on loopback, and a CLI store whose default connection ``live``
    reaches it with the admin key (no CLI environment variables leak in)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, create_app(context), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PVC_CLIENT_DIR", str(tmp_path / "client"))
    for name in ("PVC_CONNECTION", "PVC_UNSAFE", "PVC_QUIET"):
        monkeypatch.delenv(name, raising=False)
    connections.register_connection(
        "live", "127.0.0.1", port=server.server_port, api_key=TOKENS["admin"], make_default=True
    )
    try:
        yield
    finally:
        server.shutdown()


@pytest.fixture
def prov(api_factory, provisioner_db):  # noqa: F811
    """An API client whose provisioner database is a fresh PostgreSQL database."""
    client, context = api_factory()
    context.database = provisioner_db
    return client
