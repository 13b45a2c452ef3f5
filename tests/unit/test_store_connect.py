"""A ZooKeeper member that drops SYNs must not cost a client its whole session."""

from kazoo.handlers import utils

from pvc.state.store import BoundedConnectHandler, Store, connect_timeout


def test_the_connect_budget_is_a_share_of_the_session_per_member():
    assert connect_timeout("a:2181,b:2181,c:2181/pvc", 4.0) == 4.0 / 6
    assert connect_timeout("a:2181", 4.0) == 2.0
    assert connect_timeout("a,b,c,d,e,f,g,h,i", 1.0) == 0.2  # never below 0.2 s


def test_tcp_connects_are_bounded(monkeypatch):
    asked = []
    monkeypatch.setattr(utils, "create_tcp_connection", lambda module, *a, **kw: asked.append(kw["timeout"]))
    handler = BoundedConnectHandler(0.5)
    handler.create_connection(address=("127.0.0.1", 2181), timeout=4.0)  # what kazoo asks for
    handler.create_connection(address=("127.0.0.1", 2181), timeout=0.1)
    assert asked == [0.5, 0.1]


def test_stores_use_the_bounded_handler():
    store = Store("127.0.0.1:1,127.0.0.1:2", timeout=4.0)
    assert isinstance(store.client.handler, BoundedConnectHandler)
    assert store.client.handler.connect_timeout == 1.0
