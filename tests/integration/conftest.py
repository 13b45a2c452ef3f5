"""A real ZooKeeper for the integration tests: one server per session, a chroot per test.

Every store and daemon authenticates with the tests' credential (``tests.helpers``); the
server's root and each test's chroot are restricted to it, as PVC restricts its own tree.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from pvc import processes
from pvc.cluster.session import API_ROOTS, Cluster
from pvc.config import NodeConfig
from pvc.lab import zookeeper
from pvc.node.loop import NodeLoop
from pvc.state.cache import ClusterCache
from pvc.state.schema import ensure_schema
from pvc.state.store import Store
from tests.helpers import node_config, zk_credential
from tests.integration.netns_lab import NetnsLab
from tests.integration.postgres_fixtures import db_name, pg_server, provisioner_db  # noqa: F401


def authenticated_client(hosts: str) -> KazooClient:
    """A raw kazoo client with the tests' credential (for what a Store does not do)."""
    user, password = zk_credential()
    client = KazooClient(hosts=hosts, auth_data=[("digest", f"{user}:{password}")])
    client.default_acl = [make_digest_acl(user, password, all=True)]
    return client


@pytest.fixture(scope="session")
def zk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ref, member = zookeeper.start_standalone(tmp_path_factory.mktemp("zookeeper"))
    hosts = f"127.0.0.1:{member.client_port}"
    client = authenticated_client(hosts)
    client.start(timeout=10)
    client.set_acls("/", client.default_acl)  # nobody else may create (or list) under the root
    client.stop()
    client.close()
    try:
        yield hosts
    finally:
        processes.terminate([ref])


@pytest.fixture
def zk_hosts(zk_server: str) -> str:
    """A connect string with a fresh chroot for this test."""
    chroot = f"/t-{uuid.uuid4().hex[:12]}"
    client = authenticated_client(zk_server)
    client.start(timeout=10)
    client.ensure_path(chroot)
    client.stop()
    client.close()
    return f"{zk_server}{chroot}"


@pytest.fixture
def domain_cluster(make_store: Callable[..., Store]) -> Iterator[Cluster]:
    """A cluster as the API holds it (its store, its watched cache of the API's trees), on a
    fresh ZooKeeper tree with the current schema."""
    store = make_store()
    ensure_schema(store)
    cache = ClusterCache(store, API_ROOTS)
    cache.start()
    assert cache.wait_ready(10)
    yield Cluster(store, cache)
    cache.close()


@pytest.fixture
def make_store(zk_hosts: str) -> Iterator[Callable[..., Store]]:
    stores: list[Store] = []

    def make(timeout: float = 5.0) -> Store:
        store = Store(zk_hosts, timeout=timeout, credential=zk_credential())
        assert store.start(give_up_after=10)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.stop()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


class RunningNode:
    """A NodeLoop running in a thread, as pvcnoded would run it."""

    def __init__(self, config: NodeConfig, zk_hosts: str, **loop_kwargs) -> None:
        self.store = Store(
            zk_hosts, timeout=config.zookeeper.session_timeout, credential=config.zookeeper.load_credential()
        )
        assert self.store.start(give_up_after=10)
        self.loop = NodeLoop(config, self.store, **loop_kwargs)
        self.loop.start()
        self.thread = threading.Thread(target=self.loop.run, daemon=True)
        self.thread.start()

    @property
    def name(self) -> str:
        return self.loop.name

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.request_stop()
            self.thread.join(15)
            assert not self.thread.is_alive(), f"{self.name} did not stop"


@pytest.fixture
def test_driver_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A libvirt test-driver URI; every connection to it is a separate, empty hypervisor."""
    config = tmp_path_factory.mktemp("libvirt") / "testnode.xml"
    config.write_text("<node/>\n")
    return f"test://{config}"


#: Keyword arguments of ``cluster(...)`` that go to the NodeLoop rather than its configuration.
LOOP_KWARGS = ("phases", "sriov_host", "clock", "monotonic")


@pytest.fixture
def cluster(zk_hosts: str) -> Iterator[Callable[..., RunningNode]]:
    """Start node daemons in threads: ``cluster("n1", ["n1", "n2"])``."""
    nodes: list[RunningNode] = []

    def start(name: str, coordinators: list[str], **kwargs) -> RunningNode:
        loop_kwargs = {k: kwargs.pop(k) for k in LOOP_KWARGS if k in kwargs}
        node = RunningNode(node_config(name, coordinators, zk_hosts, **kwargs), zk_hosts, **loop_kwargs)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


def expire_session(store: Store) -> None:
    """Make ZooKeeper expire the session of ``store`` (as after a long partition)."""
    session_id, password = store.client.client_id
    intruder = KazooClient(hosts=store.hosts, client_id=(session_id, password))
    intruder.start(timeout=10)
    intruder.stop()
    intruder.close()


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    """Network namespaces of the test's own (see :mod:`tests.integration.netns_lab`), removed after."""
    lab = NetnsLab()
    try:
        yield lab
    finally:
        lab.close()
