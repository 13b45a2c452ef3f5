"""Wire shapes PVC v1 clients parse: the backup body, element GETs, boolean arguments.

Each test goes through the real routes over a real ZooKeeper; the Ceph figures an OSD or pool
GET reads are written where the storage mirror writes them.
"""

from __future__ import annotations

import json

import pytest

from pvc.state import paths
from tests.helpers import wait_for

PREFIX = "/api/v1"
CONFIRM = {"yes-i-really-mean-it": "yes"}


def mirror(context, path: str, record: dict) -> None:
    """Write a Ceph figure as the mirror does and wait until the API's cache shows it."""
    text = json.dumps(record)
    context.cluster.store.set(path, text)
    wait_for(lambda: context.cluster.cache.data(path) is not None, 5)


# 1. GET /backup: a JSON string whose content is the JSON dump.


def test_backup_body_is_a_json_string_holding_the_dump(api):
    client, context = api
    context.cluster.store.set("/config/cluster_name", "twice")
    response = client.get(f"{PREFIX}/backup")
    assert response.status_code == 200 and response.content_type == "application/json"
    outer = json.loads(response.get_data(as_text=True))
    assert isinstance(outer, str)
    dump = json.loads(outer)
    assert isinstance(dump, dict)
    assert dump["/config/cluster_name"] == "twice" and paths.SCHEMA_VERSION in dump
    # the decoded text is what /restore takes as cluster_data
    context.cluster.store.set("/config/cluster_name", "changed")
    restored = client.post(f"{PREFIX}/restore", data={"cluster_data": outer, **CONFIRM})
    assert restored.status_code == 200, restored.json
    assert context.cluster.store.get_text("/config/cluster_name") == "twice"


# 2. Element GETs answer a list of one element.


def test_osd_element_get_is_a_one_element_list_like_the_pool_get(api):
    client, context = api
    mirror(context, paths.ceph_osd(3), {"id": 3, "up": 1, "in": 1, "kb": 1024, "state": ["exists", "up"]})
    mirror(context, paths.ceph_pool("rbd"), {"name": "rbd", "pg_num": 32})
    listed = client.get(f"{PREFIX}/storage/ceph/osd").json
    for element, key, ident in (("osd/3", "id", "3"), ("pool/rbd", "name", "rbd")):
        body = client.get(f"{PREFIX}/storage/ceph/{element}").json
        assert isinstance(body, list) and len(body) == 1, element
        assert body[0][key] == ident
    assert client.get(f"{PREFIX}/storage/ceph/osd/3").json == [osd for osd in listed if osd["id"] == "3"]
    missing = client.get(f"{PREFIX}/storage/ceph/osd/4")
    assert missing.status_code == 404 and "not found" in missing.json["message"]


# 3. Booleans: strtobool's words in any case, through the one parser; anything else is a 400.


@pytest.mark.parametrize(
    ("word", "expected"),
    [("TRUE", "true"), ("Yes", "true"), ("t", "true"), ("F", "false"), ("0", "false"), ("No", "false")],
)
def test_maintenance_state_takes_every_boolean_spelling(api, word, expected):
    client, context = api
    start = "false" if expected == "true" else "true"
    assert client.post(f"{PREFIX}/status", data={"state": start}).status_code == 200
    response = client.post(f"{PREFIX}/status", query_string={"state": word})
    assert response.status_code == 200, response.json
    assert context.cluster.store.get_text("/config/maintenance") == expected
    assert client.get(f"{PREFIX}/status").json["maintenance"] == expected


def test_a_bad_boolean_is_a_400_naming_the_argument_and_changes_nothing(api):
    client, context = api
    assert client.post(f"{PREFIX}/status", data={"state": "false"}).status_code == 200
    for bad in ("maybe", "tru", "2", ""):
        response = client.post(f"{PREFIX}/status", data={"state": bad})
        assert response.status_code == 400, bad
        assert response.json["message"].startswith("Argument 'state' must be true or false"), bad
        assert f"not '{bad}'" in response.json["message"]
    assert context.cluster.store.get_text("/config/maintenance") == "false"
    listing = client.get(f"{PREFIX}/vm", query_string={"negate": "Perhaps"})
    assert listing.status_code == 400 and "'negate' must be true or false" in listing.json["message"]
    assert client.get(f"{PREFIX}/vm", query_string={"negate": "T"}).status_code == 200


def test_initialize_overwrite_is_a_boolean(api):
    client, context = api
    store = context.cluster.store
    store.set("/nodes/ghost", "x")
    kept = client.post(f"{PREFIX}/initialize", query_string={**CONFIRM, "overwrite": "F"})
    assert kept.status_code == 400 and "already initialized" in kept.json["message"]
    bad = client.post(f"{PREFIX}/initialize", query_string={**CONFIRM, "overwrite": "wipe"})
    assert bad.status_code == 400 and "'overwrite' must be true or false" in bad.json["message"]
    assert store.exists("/nodes/ghost")
    wiped = client.post(f"{PREFIX}/initialize", query_string={**CONFIRM, "overwrite": "t"})
    assert wiped.status_code == 200, wiped.json
    assert not store.exists("/nodes/ghost") and store.exists(paths.SCHEMA_VERSION)


def test_the_confirmation_is_a_boolean_and_false_refuses(api):
    client, context = api
    store = context.cluster.store
    store.set("/config/cluster_name", "kept")
    dump = json.loads(client.get(f"{PREFIX}/backup").json)
    dump["/config/cluster_name"] = "replaced"
    refusals = (("f", "confirm with yes-i-really-mean-it"), ("NO", "confirm with"), ("sure", "true or"))
    for word, words in refusals:
        refused = client.post(
            f"{PREFIX}/restore", data={"cluster_data": json.dumps(dump), "yes-i-really-mean-it": word}
        )
        assert refused.status_code == 400 and words in refused.json["message"], word
    assert store.get_text("/config/cluster_name") == "kept"
    mirror(context, paths.ceph_pool("rbd"), {"name": "rbd", "pg_num": 32})
    kept = client.delete(f"{PREFIX}/storage/ceph/pool/rbd", query_string={"yes-i-really-mean-it": "F"})
    assert kept.status_code == 400 and "confirm with yes-i-really-mean-it" in kept.json["message"]
    accepted = client.post(
        f"{PREFIX}/restore", data={"cluster_data": json.dumps(dump), "yes-i-really-mean-it": "Yes"}
    )
    assert accepted.status_code == 200, accepted.json
    assert store.get_text("/config/cluster_name") == "replaced"
