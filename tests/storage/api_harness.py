"""An API over the session's real Ceph for the storage tests: its own store and cache, the
storage mirror published once, Flask's test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flask.testing import FlaskClient

from pvc.api.app import create_app
from pvc.api.context import ApiContext
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.cluster.storage.access import StorageAccess
from pvc.cluster.storage.mirror import Mirror, collect
from pvc.config import ApiSection
from pvc.state.cache import ClusterCache
from pvc.state.schema import ensure_schema
from pvc.state.store import Store
from pvc.storage.client import CephClient
from tests.helpers import TEST_API_KEY, wait_for

PREFIX = "/api/v1"


@contextmanager
def api_over_ceph(
    make_store: Callable[[], Store], ceph_client: CephClient, access: StorageAccess, state_dir: Path
) -> Iterator[tuple[FlaskClient, ApiContext]]:
    """(test client, context) of an API with Ceph ``access``, once it sees hv1 as the primary."""
    api_store = make_store()
    ensure_schema(api_store)
    Mirror(api_store).publish(collect(ceph_client))
    cache = ClusterCache(api_store, API_ROOTS)
    cache.start()
    assert cache.wait_ready(10)
    context = ApiContext(
        cluster=Cluster(api_store, cache),
        settings=ApiSection.model_validate({"token": [{"token": TEST_API_KEY}]}),
        cluster_name="test",
        state_dir=state_dir,
        storage=access,
    )
    client = create_app(context).test_client()
    client.environ_base["HTTP_X_API_KEY"] = TEST_API_KEY  # every request sends the key
    try:
        wait_for(lambda: client.get(f"{PREFIX}/status/primary_node").json["primary_node"] == "hv1", 15)
        yield client, context
    finally:
        cache.close()
