"""The API over a real ZooKeeper: Flask's test client, nodes run by real NodeLoops."""

from __future__ import annotations

import pytest

from pvc.api.app import create_app
from pvc.api.context import ApiContext
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.config import ApiSection
from pvc.domain_xml.policy import XmlPolicy
from pvc.state.cache import ClusterCache
from pvc.state.schema import ensure_schema
from tests.integration.conftest import (  # noqa: F401
    cluster,
    make_store,
    store,
    test_driver_uri,
    zk_hosts,
    zk_server,
)

TOKENS = {"admin": "admin-key", "operator": "operator-key", "read-only": "reader-key"}


def settings(auth: bool) -> ApiSection:
    return ApiSection.model_validate(
        {
            "authentication": {"enabled": auth, "source": "token"},
            "token": [{"token": token, "role": role} for role, token in TOKENS.items()],
        }
    )


@pytest.fixture
def api_factory(make_store, tmp_path):  # noqa: F811
    caches = []

    def build(auth: bool = False, xml_policy: XmlPolicy | None = None):
        api_store = make_store()
        ensure_schema(api_store)
        cache = ClusterCache(api_store, API_ROOTS)
        cache.start()
        assert cache.wait_ready(10)
        caches.append(cache)
        context = ApiContext(
            cluster=Cluster(api_store, cache),
            settings=settings(auth),
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
