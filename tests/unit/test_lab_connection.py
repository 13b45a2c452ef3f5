"""The lab's CLI connection: one per lab, the default only when there is none, removed only
by its own lab (a bench's or a test's lab next to the user's leaves the user's alone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvc.client import connections
from pvc.lab import endpoint, lab_connection
from pvc.lab.layout import LabLayout


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "client"
    monkeypatch.setenv("PVC_CLIENT_DIR", str(tmp_path / "unused"))  # only the explicit store is used
    monkeypatch.setattr(connections, "LOCAL_CFGFILE", str(tmp_path / "no-pvc.conf"))
    return directory


def lab(tmp_path: Path, name: str, **options) -> LabLayout:
    layout = LabLayout(tmp_path / name, **options)
    endpoint.new_api_key(layout)
    return layout


def stored(store: Path) -> dict:
    return json.loads((store / "pvc.json").read_text())


def test_names_derive_from_prefix_and_net_index(tmp_path: Path) -> None:
    assert endpoint.connection_name(LabLayout(tmp_path)) == "lab"
    assert endpoint.connection_name(LabLayout(tmp_path, prefix="pvct", net_index=77)) == "lab-pvct-77"
    assert endpoint.connection_name(LabLayout(tmp_path, prefix="pvcb")) == "lab-pvcb"
    assert endpoint.connection_name(LabLayout(tmp_path, net_index=3)) == "lab-3"


def test_first_lab_becomes_default_and_a_second_does_not_take_it(tmp_path: Path, store: Path) -> None:
    user = lab(tmp_path, "user")
    bench = lab(tmp_path, "bench", prefix="pvcb", net_index=78)
    first = lab_connection.register(user, store)
    assert (first.name, first.written, first.default) == ("lab", True, True)
    assert connections.get_default_connection(store) == "lab"
    second = lab_connection.register(bench, store)
    assert (second.name, second.default, second.other_default) == ("lab-pvcb-78", False, "lab")
    assert connections.get_default_connection(store) == "lab"
    entries = stored(store)
    assert entries["lab"]["host"] == "10.100.0.250" and entries["lab"]["api_key"] == endpoint.api_key(user)
    assert entries["lab-pvcb-78"]["host"] == "10.100.78.250"
    assert "'pvc -c lab-pvcb-78" in lab_connection.describe(second)

    # the bench's lab goes down: only its own connection goes, the user's default stays
    assert lab_connection.forget(bench, store)
    assert set(stored(store)) == {"local", "lab"}
    assert connections.get_default_connection(store) == "lab"
    assert not lab_connection.forget(bench, store)  # nothing of its own left


def test_removing_the_default_leaves_no_default(tmp_path: Path, store: Path) -> None:
    user = lab(tmp_path, "user")
    other = lab(tmp_path, "other", prefix="pvct")
    lab_connection.register(user, store)
    lab_connection.register(other, store)
    assert lab_connection.forget(user, store)
    assert connections.get_default_connection(store) is None  # not silently the other lab
    assert set(stored(store)) == {"local", "lab-pvct"}
    # the next lab up finds no default and becomes it
    assert lab_connection.register(other, store).default
    assert connections.get_default_connection(store) == "lab-pvct"


def test_user_default_and_stale_default(tmp_path: Path, store: Path) -> None:
    connections.register_connection("prod", "192.0.2.10", make_default=True, directory=store)
    mine = lab(tmp_path, "mine")
    assert not lab_connection.register(mine, store).default
    assert connections.get_default_connection(store) == "prod"
    # a default naming a connection that is gone counts as none
    connections.save_connections({"local": {"cfgfile": "/x"}}, store)
    assert lab_connection.register(mine, store).default
    assert connections.get_default_connection(store) == "lab"


def test_a_connection_the_lab_did_not_make_is_left_alone(tmp_path: Path, store: Path) -> None:
    connections.register_connection("lab", "192.0.2.20", description="my lab box", directory=store)
    mine = lab(tmp_path, "mine")
    result = lab_connection.register(mine, store)
    assert not result.written and "left alone" in lab_connection.describe(result)
    assert stored(store)["lab"]["host"] == "192.0.2.20"
    assert not lab_connection.forget(mine, store)
    assert stored(store)["lab"]["host"] == "192.0.2.20"


def test_another_labs_entry_of_the_same_name_is_not_removed(tmp_path: Path, store: Path) -> None:
    old = lab(tmp_path, "old")
    new = lab(tmp_path, "new")  # the same name ("lab"), another directory: it replaces the entry
    lab_connection.register(old, store)
    lab_connection.register(new, store)
    assert stored(store)["lab"]["description"] == endpoint.description(new)
    assert not lab_connection.forget(old, store)  # the old lab's down leaves the new one's
    assert lab_connection.forget(new, store)
