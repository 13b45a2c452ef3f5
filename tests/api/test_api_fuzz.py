"""Property-based fuzzing of every documented operation: no input may cause a server error.

schemathesis reads the OpenAPI document the app serves and generates requests from it
(valid and invalid arguments, odd path values); each must get an answer below 500.
Destructive operations run against this test's own throwaway ZooKeeper chroot.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from pvc.api.app import create_app
from pvc.api.context import ApiContext
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.state.cache import ClusterCache
from pvc.state.schema import ensure_schema
from pvc.state.store import Store
from tests.api.conftest import settings as api_settings
from tests.helpers import zk_credential


def _app():
    return _FUZZ["app"]


_FUZZ: dict = {}


@pytest.fixture(scope="module")
def fuzz_app(zk_server, pg_server):
    import uuid

    from pvc.db.bootstrap import ensure_owner
    from pvc.db.engine import Database
    from tests.integration.conftest import authenticated_client
    from tests.integration.postgres_fixtures import database_conninfo

    chroot = f"/fuzz-{uuid.uuid4().hex[:8]}"
    client = authenticated_client(zk_server)
    client.start(timeout=10)
    client.ensure_path(chroot)
    client.stop()
    store = Store(zk_server + chroot, timeout=5, credential=zk_credential())
    assert store.start(give_up_after=10)
    ensure_schema(store)
    cache = ClusterCache(store, API_ROOTS)
    cache.start()
    assert cache.wait_ready(10)
    # The provisioner's endpoints are fuzzed against a database of their own.
    name = f"fuzz_{uuid.uuid4().hex[:8]}"
    ensure_owner(pg_server.conninfo("postgres"), name, "secret")
    database = Database(lambda: database_conninfo(pg_server, name))
    context = ApiContext(cluster=Cluster(store, cache), settings=api_settings(False), database=database)
    app = create_app(context)
    _FUZZ["app"] = app
    yield app
    database.close()
    cache.close()
    store.stop()


def test_served_document_loads(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    assert len(list(schema.get_all_operations())) >= 25


def test_no_request_causes_a_server_error(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as error:  # collect all, report together
                failures.append(f"{case.method} {case.formatted_path}: {error}")
                raise

        try:
            check()
        except Exception:
            continue
    assert not failures, "\n".join(failures[:10])
