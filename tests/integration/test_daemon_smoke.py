from tests.helpers import wait_for

from pvc.state import paths


def test_single_coordinator_becomes_primary(cluster, store):
    node = cluster("n1", ["n1"])
    wait_for(lambda: store.get_text(paths.node_coordinator_state("n1")) == "primary", 10)
    assert store.get_text(paths.PRIMARY_NODE) == "n1"
    assert store.get_text(paths.node_daemon_state("n1")) == "run"
    node.stop()
    assert store.get_text(paths.node_daemon_state("n1")) == "stop"
    assert store.get_text(paths.PRIMARY_NODE) == "none"
