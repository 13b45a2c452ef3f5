"""What the lab's ZooKeeper lets in: PVC's daemons, and nobody without their credential."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, KazooException, NoAuthError, SessionClosedRequireSaslError

from pvc.config import read_credential_file
from pvc.state import paths
from pvc.state.members import four_letter
from pvc.state.store import Store


def _client(hosts: str, auth: str | None) -> KazooClient:
    client = KazooClient(hosts=hosts, auth_data=[("digest", auth)] if auth else None, timeout=4)
    client.start(timeout=10)
    return client


def _refused(client: KazooClient, error: type[KazooException] | tuple[type[KazooException], ...]) -> None:
    """Every way to read or change PVC's state fails with ``error``."""
    attempts = [
        lambda: client.get(paths.SCHEMA_VERSION),
        lambda: client.get_children("/"),
        lambda: client.get_children(paths.NODES),
        lambda: client.set(paths.PRIMARY_NODE, b"intruder"),
        lambda: client.create("/intruder", b"x"),
        lambda: client.create(f"{paths.TASKS}/intruder", b"x"),
        lambda: client.delete(paths.MAINTENANCE),
    ]
    for attempt in attempts:
        with pytest.raises(error):
            attempt()


def assert_only_pvc_gets_in(report: dict, lab_dir: Path) -> None:
    """The lab's credential, its configs, and what clients with and without it can do."""
    auth_file = Path(report["zookeeper_auth_file"])
    assert auth_file.parent == lab_dir and stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    for node in report["nodes"]:
        config = yaml.safe_load((lab_dir / "nodes" / node["name"] / "pvc.conf").read_text())
        assert config["zookeeper"]["auth"] == "digest"
        assert config["zookeeper"]["auth_file"] == str(auth_file)
    user, password = read_credential_file(auth_file)
    hosts = ",".join(report["zookeeper"])

    # the daemons' tree: every znode restricted to the credential, the ensemble's root too
    store = Store(hosts, timeout=5, credential=(user, password))
    assert store.start(give_up_after=10)
    try:
        for path in ("/", paths.SCHEMA_VERSION, paths.PRIMARY_NODE, paths.node_presence("hv1")):
            assert store.client.get_acls(path)[0] == store.acl, path
    finally:
        store.stop()

    # anonymous sessions are closed at their first request (the next one may find the
    # connection already gone); a wrong password meets the ACLs
    anonymous = _client(hosts, None)
    try:
        _refused(anonymous, (SessionClosedRequireSaslError, ConnectionLoss))
    finally:
        anonymous.stop()
        anonymous.close()
    for wrong in (f"{user}:not-{password}", "eve:guess"):
        outsider = _client(hosts, wrong)
        try:
            _refused(outsider, NoAuthError)
        finally:
            outsider.stop()
            outsider.close()

    # of the four-letter words only the harmless ones answer
    address, port = report["zookeeper"][0].split(":")
    assert "Mode:" in (four_letter(address, int(port), "srvr") or "")
    for word in ("dump", "cons", "envi", "wchp"):
        assert "not in the whitelist" in (four_letter(address, int(port), word) or ""), word
