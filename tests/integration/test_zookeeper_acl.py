"""PVC's tree is restricted to PVC's credential: nobody else reads or writes it.

The test server admits anonymous sessions (as an ensemble PVC does not configure may),
so only the ACLs stand between an outsider and the data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import OPEN_ACL_UNSAFE

from pvc import tasks
from pvc.state import acl, paths
from pvc.state.errors import AccessDeniedError
from pvc.state.schema import ensure_schema
from pvc.state.store import Store
from pvc.tasks.builtin import sleep
from tests.helpers import wait_for, zk_credential
from tests.integration.conftest import authenticated_client
from tests.integration.test_election import one_primary_of

OUTSIDERS = {"anonymous": None, "wrong password": ("pvc", "not-the-password"), "other user": ("eve", "x")}


@pytest.fixture(params=list(OUTSIDERS))
def outsider(request, zk_hosts: str) -> Iterator[KazooClient]:
    """A raw client on the test's tree without PVC's credential."""
    credential = OUTSIDERS[request.param]
    auth = [("digest", ":".join(credential))] if credential else None
    client = KazooClient(hosts=zk_hosts, auth_data=auth)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


def acls_of_tree(store: Store, top: str = "/") -> dict[str, list]:
    """Every znode of the session's tree (but ZooKeeper's own) with its ACL."""
    found = {}
    pending = [top]
    while pending:
        path = pending.pop()
        if path == "/zookeeper":
            continue
        found[path] = store.client.get_acls(path)[0]
        pending += [f"{path.rstrip('/')}/{child}" for child in store.client.get_children(path)]
    return found


def assert_only_pvc(store: Store) -> dict[str, list]:
    found = acls_of_tree(store)
    open_ones = sorted(path for path, entries in found.items() if entries != store.acl)
    assert open_ones == [], f"znodes not restricted to PVC's credential: {open_ones}"
    return found


def assert_refused(client: KazooClient, reads: list[str]) -> None:
    """The client can neither read, list, change, create nor delete anything of PVC's."""
    for path in reads:
        with pytest.raises(NoAuthError):
            client.get(path)
        with pytest.raises(NoAuthError):
            client.get_children(path)
        with pytest.raises(NoAuthError):
            client.set(path, b"mine")
        with pytest.raises(NoAuthError):
            client.get_acls(path)
        with pytest.raises(NoAuthError):
            client.set_acls(path, OPEN_ACL_UNSAFE)
    for parent in ["/", *paths.ROOTS]:
        with pytest.raises(NoAuthError):
            client.create(f"{parent.rstrip('/')}/intruder", b"x")
    with pytest.raises(NoAuthError):
        client.delete(paths.SCHEMA_VERSION)


def test_a_new_tree_is_restricted_and_outsiders_are_refused(store: Store, outsider: KazooClient):
    ensure_schema(store)
    found = assert_only_pvc(store)
    assert "/" in found and paths.SCHEMA_VERSION in found and paths.PRIMARY_NODE in found
    assert store.acl[0].id.scheme == "digest" and store.acl[0].id.id.startswith(f"{zk_credential().user}:")
    assert store.get_text(paths.SCHEMA_ACL) == acl.fingerprint(store.acl)
    assert_refused(outsider, ["/", paths.SCHEMA_VERSION, paths.PRIMARY_NODE, paths.NODES])
    # and everything is still where PVC put it
    assert store.get_text(paths.SCHEMA_VERSION) and "intruder" not in store.children("/")


def test_the_daemons_work_on_a_restricted_tree(cluster, store: Store, outsider: KazooClient):
    cluster("n1", ["n1", "n2"], index=1)
    cluster("n2", ["n1", "n2"], index=2)
    primary = wait_for(lambda: one_primary_of(store, ["n1", "n2"]))
    for name in ("n1", "n2"):
        wait_for(lambda name=name: store.get_text(paths.node_daemon_state(name)) == "run")
        assert store.ephemeral_owner(paths.node_presence(name))  # registered with a live session
    record = tasks.submit(store, sleep, "n2", {"seconds": 0.2, "steps": 2})
    wait_for(lambda: tasks.get(store, record.id).state == "SUCCESS", 15)
    # election moves the primary; everything the daemons wrote (presence, keepalives,
    # lock contenders, logs, the task) carries the ACL
    other = "n2" if primary == "n1" else "n1"
    store.set(paths.PRIMARY_NODE, other)
    wait_for(lambda: one_primary_of(store, ["n1", "n2"]) == other, 10)
    found = assert_only_pvc(store)
    assert paths.node_presence("n1") in found and paths.task(record.id) in found
    assert any(path.startswith(paths.PRIMARY_LOCK + "/") for path in found)
    assert_refused(outsider, [paths.node_keepalive("n1"), paths.node_presence("n2"), paths.task(record.id)])


@pytest.fixture
def open_hosts(zk_server: str) -> str:
    """A connect string whose chroot node is open to everyone, as before authentication."""
    chroot = f"/open-{uuid.uuid4().hex[:12]}"
    client = authenticated_client(zk_server)  # the server's root admits only the tests' credential
    client.start(timeout=10)
    client.create(chroot, acl=OPEN_ACL_UNSAFE)
    client.stop()
    client.close()
    return zk_server + chroot


@pytest.fixture
def pvc_store(open_hosts: str) -> Iterator[Store]:
    """An authenticated store on ``open_hosts``."""
    store = Store(open_hosts, timeout=5, credential=zk_credential())
    assert store.start(give_up_after=10)
    yield store
    store.stop()


def test_an_open_tree_is_restricted_at_the_next_start(open_hosts: str, pvc_store: Store):
    # a cluster made before authentication: everything open (ZooKeeper's default ACL)
    before = Store(open_hosts, timeout=5)
    assert before.start(give_up_after=10)
    try:
        ensure_schema(before)
        before.set(paths.node_keepalive("old1"), {"time": 1})
        before.set(paths.task("0000beef"), {"id": "0000beef"})
        opened = acls_of_tree(before)
        assert all(entries == OPEN_ACL_UNSAFE for entries in opened.values())
    finally:
        before.stop()

    store = pvc_store
    found, now = ensure_schema(store)  # the version is current: only the ACLs change
    assert found == now
    after = assert_only_pvc(store)
    assert set(opened) <= set(after)
    assert store.get(paths.node_keepalive("old1"))  # the data is untouched
    # once done, a start only checks the top of the tree
    operations = store.operations
    assert acl.protect(store) == 0
    assert store.operations - operations <= 2 * (len(paths.ROOTS) + 2)

    outsider = KazooClient(hosts=open_hosts)
    outsider.start(timeout=10)
    try:
        assert_refused(outsider, [paths.node_keepalive("old1"), paths.task("0000beef"), paths.SCHEMA])
    finally:
        outsider.stop()
        outsider.close()


def test_an_interrupted_walk_is_finished_at_the_next_start(open_hosts: str, pvc_store: Store):
    before = Store(open_hosts, timeout=5)
    assert before.start(give_up_after=10)
    try:
        ensure_schema(before)
        before.set(paths.node_keepalive("old1"), {"time": 1})
    finally:
        before.stop()
    store = pvc_store
    # a walk that stopped after the top of the tree: the roots are restricted, a deep
    # znode is not, and the fingerprint was never written
    for top in ["/", *paths.ROOTS]:
        if store.exists(top):
            store.client.set_acls(top, store.acl)
    assert store.client.get_acls(paths.node_keepalive("old1"))[0] == OPEN_ACL_UNSAFE
    assert not acl.is_protected(store)
    ensure_schema(store)
    assert_only_pvc(store)
    assert acl.is_protected(store)


def test_another_credential_is_refused_with_a_clear_error(store: Store, zk_hosts: str):
    ensure_schema(store)
    stranger = Store(zk_hosts, timeout=5, credential=("pvc", "an-old-password"))
    assert stranger.start(give_up_after=10)
    try:
        with pytest.raises(AccessDeniedError, match=r"zookeeper\.auth_file"):
            stranger.get(paths.SCHEMA_VERSION)
        with pytest.raises(AccessDeniedError, match=paths.NODES):
            stranger.set(paths.node_keepalive("n9"), {"time": 1})
        with pytest.raises(AccessDeniedError):
            ensure_schema(stranger)
        with pytest.raises(AccessDeniedError), stranger.transaction() as txn:
            txn.create(paths.node("n9"))
    finally:
        stranger.stop()
    assert_only_pvc(store)
