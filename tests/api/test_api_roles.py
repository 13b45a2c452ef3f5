"""The least role of every endpoint, written down once from what the roles mean.

``read-only`` reads everything; ``operator`` also changes VMs, nodes' states, faults,
maintenance mode, client networks and their DHCP reservations, pools, volumes, snapshots,
OSD in/out and flags, SR-IOV VF settings and the provisioner's templates, userdata, scripts
and profiles, runs benchmarks and cancels tasks; ``admin`` also
initialises, backs up and restores the cluster, changes network ACLs and adds, removes, replaces
and refreshes OSDs and the OSD DB volume group (docs/api.md). The table
below is kept by hand on purpose: a route added, removed or given another role fails these
tests until the table (and the documentation) agree.
"""

from __future__ import annotations

import re

import pytest

from pvc.api.resources import GROUPS
from tests.api.conftest import TOKENS

PREFIX = "/api/v1"
OPEN = "open"
RO, OP, AD = "read-only", "operator", "admin"
#: Open unless the named ``api.authentication`` flag is on; then ``read-only``.
METRICS, OPENAPI = "open/protect_metrics", "open/protect_openapi"

EXPECTED: dict[tuple[str, str], str] = {
    # the API itself and sessions
    ("GET", "/"): OPEN,
    ("POST", "/login"): OPEN,
    ("POST", "/logout"): OPEN,
    ("GET", "/openapi.json"): OPENAPI,
    # the whole cluster's state: admin only
    ("POST", "/initialize"): AD,
    ("GET", "/backup"): AD,
    ("POST", "/backup"): AD,
    ("POST", "/restore"): AD,
    # status and maintenance
    ("GET", "/status"): RO,
    ("POST", "/status"): OP,
    ("GET", "/status/primary_node"): OPEN,
    # nodes
    ("GET", "/node"): RO,
    ("GET", "/node/<node>"): RO,
    ("GET", "/node/<node>/daemon-state"): RO,
    ("GET", "/node/<node>/coordinator-state"): RO,
    ("GET", "/node/<node>/domain-state"): RO,
    ("POST", "/node/<node>/coordinator-state"): OP,
    ("POST", "/node/<node>/domain-state"): OP,
    ("GET", "/node/<node>/log"): RO,
    # faults
    ("GET", "/faults"): RO,
    ("PUT", "/faults"): OP,
    ("DELETE", "/faults"): OP,
    ("GET", "/faults/<fault_id>"): RO,
    ("PUT", "/faults/<fault_id>"): OP,
    ("DELETE", "/faults/<fault_id>"): OP,
    # tasks
    ("GET", "/tasks"): RO,
    ("GET", "/tasks/<task_id>"): RO,
    ("DELETE", "/tasks/<task_id>"): OP,
    # VMs
    ("GET", "/vm"): RO,
    ("POST", "/vm"): OP,
    ("GET", "/vm/<vm>"): RO,
    ("POST", "/vm/<vm>"): OP,
    ("PUT", "/vm/<vm>"): OP,
    ("DELETE", "/vm/<vm>"): OP,
    ("GET", "/vm/<vm>/meta"): RO,
    ("POST", "/vm/<vm>/meta"): OP,
    ("GET", "/vm/<vm>/tags"): RO,
    ("POST", "/vm/<vm>/tags"): OP,
    ("GET", "/vm/<vm>/state"): RO,
    ("POST", "/vm/<vm>/state"): OP,
    ("GET", "/vm/<vm>/node"): RO,
    ("POST", "/vm/<vm>/node"): OP,
    ("GET", "/vm/<vm>/console"): RO,
    ("POST", "/vm/<vm>/rename"): OP,
    ("POST", "/vm/<vm>/device"): OP,
    ("DELETE", "/vm/<vm>/device"): OP,
    ("POST", "/vm/<vm>/locks"): OP,
    ("GET", "/vm/<vm>/snapshot"): RO,
    ("POST", "/vm/<vm>/snapshot"): OP,
    ("DELETE", "/vm/<vm>/snapshot"): OP,
    ("POST", "/vm/<vm>/snapshot/rollback"): OP,
    # an export writes under the cluster's backup paths; an import defines a VM from a file
    ("POST", "/vm/<vm>/snapshot/export"): OP,
    ("POST", "/vm/<vm>/snapshot/import"): AD,
    ("POST", "/vm/<vm>/backup"): OP,
    ("DELETE", "/vm/<vm>/backup"): OP,
    ("POST", "/vm/<vm>/restore"): AD,
    # receiving a mirror from another cluster writes volumes and defines VMs, as an operator may
    ("POST", "/vm/<vm>/snapshot/receive/block"): OP,
    ("PUT", "/vm/<vm>/snapshot/receive/block"): OP,
    ("PATCH", "/vm/<vm>/snapshot/receive/block"): OP,
    ("POST", "/vm/<vm>/snapshot/receive/config"): OP,
    ("POST", "/vm/<vm>/snapshot/send"): OP,
    ("POST", "/vm/<vm>/mirror/create"): OP,
    ("POST", "/vm/<vm>/mirror/promote"): OP,
    ("POST", "/vm/autobackup"): OP,
    ("POST", "/vm/automirror"): OP,
    # client networks and their DHCP reservations: an operator's; ACLs (firewall rules that
    # run on the primary) an admin's
    ("GET", "/network"): RO,
    ("POST", "/network"): OP,
    ("GET", "/network/<vni>"): RO,
    ("POST", "/network/<vni>"): OP,
    ("PUT", "/network/<vni>"): OP,
    ("DELETE", "/network/<vni>"): OP,
    ("GET", "/network/<vni>/lease"): RO,
    ("POST", "/network/<vni>/lease"): OP,
    ("GET", "/network/<vni>/lease/<mac>"): RO,
    ("POST", "/network/<vni>/lease/<mac>"): OP,
    ("DELETE", "/network/<vni>/lease/<mac>"): OP,
    ("GET", "/network/<vni>/acl"): RO,
    ("POST", "/network/<vni>/acl"): AD,
    ("GET", "/network/<vni>/acl/<description>"): RO,
    ("POST", "/network/<vni>/acl/<description>"): AD,
    ("DELETE", "/network/<vni>/acl/<description>"): AD,
    # storage: reports and cluster-wide settings
    ("GET", "/storage"): RO,
    ("GET", "/storage/ceph"): RO,
    ("GET", "/storage/ceph/status"): RO,
    ("GET", "/storage/ceph/utilization"): RO,
    ("GET", "/storage/ceph/benchmark"): RO,
    ("POST", "/storage/ceph/benchmark"): OP,
    ("POST", "/storage/ceph/option"): OP,
    # OSDs: their devices are admin work, in/out is an operator's
    ("POST", "/storage/ceph/osddb"): AD,
    ("GET", "/storage/ceph/osd"): RO,
    ("POST", "/storage/ceph/osd"): AD,
    ("GET", "/storage/ceph/osd/<osdid>"): RO,
    ("POST", "/storage/ceph/osd/<osdid>"): AD,
    ("PUT", "/storage/ceph/osd/<osdid>"): AD,
    ("DELETE", "/storage/ceph/osd/<osdid>"): AD,
    ("GET", "/storage/ceph/osd/<osdid>/state"): RO,
    ("POST", "/storage/ceph/osd/<osdid>/state"): OP,
    # pools
    ("GET", "/storage/ceph/pool"): RO,
    ("POST", "/storage/ceph/pool"): OP,
    ("GET", "/storage/ceph/pool/<pool>"): RO,
    ("POST", "/storage/ceph/pool/<pool>"): OP,
    ("PUT", "/storage/ceph/pool/<pool>"): OP,
    ("DELETE", "/storage/ceph/pool/<pool>"): OP,
    # volumes
    ("GET", "/storage/ceph/volume"): RO,
    ("POST", "/storage/ceph/volume"): OP,
    ("GET", "/storage/ceph/volume/<pool>/<volume>"): RO,
    ("POST", "/storage/ceph/volume/<pool>/<volume>"): OP,
    ("PUT", "/storage/ceph/volume/<pool>/<volume>"): OP,
    ("DELETE", "/storage/ceph/volume/<pool>/<volume>"): OP,
    ("POST", "/storage/ceph/volume/<pool>/<volume>/scan"): OP,
    ("POST", "/storage/ceph/volume/<pool>/<volume>/clone"): OP,
    ("POST", "/storage/ceph/volume/<pool>/<volume>/upload"): OP,
    # snapshots
    ("GET", "/storage/ceph/snapshot"): RO,
    ("POST", "/storage/ceph/snapshot"): OP,
    ("GET", "/storage/ceph/snapshot/<pool>/<volume>/<snapshot>"): RO,
    ("POST", "/storage/ceph/snapshot/<pool>/<volume>/<snapshot>"): OP,
    ("PUT", "/storage/ceph/snapshot/<pool>/<volume>/<snapshot>"): OP,
    ("DELETE", "/storage/ceph/snapshot/<pool>/<volume>/<snapshot>"): OP,
    ("POST", "/storage/ceph/snapshot/<pool>/<volume>/<snapshot>/rollback"): OP,
    # SR-IOV: reading is for everyone, a VF's settings are an operator's
    ("GET", "/sriov"): RO,
    ("GET", "/sriov/pf"): RO,
    ("GET", "/sriov/pf/<node>"): RO,
    ("GET", "/sriov/vf"): RO,
    ("GET", "/sriov/vf/<node>"): RO,
    ("GET", "/sriov/vf/<node>/<vf>"): RO,
    ("PUT", "/sriov/vf/<node>/<vf>"): OP,
    # the provisioner: reading is for everyone, changes are an operator's
    ("GET", "/provisioner/template"): RO,
    ("GET", "/provisioner/template/system"): RO,
    ("GET", "/provisioner/template/system/<template>"): RO,
    ("DELETE", "/provisioner/template/system/<template>"): OP,
    ("GET", "/provisioner/template/network"): RO,
    ("GET", "/provisioner/template/network/<template>"): RO,
    ("DELETE", "/provisioner/template/network/<template>"): OP,
    ("GET", "/provisioner/template/storage"): RO,
    ("GET", "/provisioner/template/storage/<template>"): RO,
    ("DELETE", "/provisioner/template/storage/<template>"): OP,
    ("POST", "/provisioner/template/system"): OP,
    ("POST", "/provisioner/template/system/<template>"): OP,
    ("PUT", "/provisioner/template/system/<template>"): OP,
    ("POST", "/provisioner/template/network"): OP,
    ("POST", "/provisioner/template/network/<template>"): OP,
    ("GET", "/provisioner/template/network/<template>/net"): RO,
    ("POST", "/provisioner/template/network/<template>/net"): OP,
    ("POST", "/provisioner/template/network/<template>/net/<vni>"): OP,
    ("GET", "/provisioner/template/network/<template>/net/<vni>"): RO,
    ("DELETE", "/provisioner/template/network/<template>/net/<vni>"): OP,
    ("POST", "/provisioner/template/storage"): OP,
    ("POST", "/provisioner/template/storage/<template>"): OP,
    ("GET", "/provisioner/template/storage/<template>/disk"): RO,
    ("POST", "/provisioner/template/storage/<template>/disk"): OP,
    ("POST", "/provisioner/template/storage/<template>/disk/<disk_id>"): OP,
    ("GET", "/provisioner/template/storage/<template>/disk/<disk_id>"): RO,
    ("DELETE", "/provisioner/template/storage/<template>/disk/<disk_id>"): OP,
    ("GET", "/provisioner/userdata"): RO,
    ("GET", "/provisioner/userdata/<name>"): RO,
    ("POST", "/provisioner/userdata"): OP,
    ("POST", "/provisioner/userdata/<name>"): OP,
    ("PUT", "/provisioner/userdata/<name>"): OP,
    ("DELETE", "/provisioner/userdata/<name>"): OP,
    ("GET", "/provisioner/script"): RO,
    ("GET", "/provisioner/script/<name>"): RO,
    ("POST", "/provisioner/script"): OP,
    ("POST", "/provisioner/script/<name>"): OP,
    ("PUT", "/provisioner/script/<name>"): OP,
    ("DELETE", "/provisioner/script/<name>"): OP,
    ("GET", "/provisioner/profile"): RO,
    ("GET", "/provisioner/profile/<profile>"): RO,
    ("POST", "/provisioner/profile"): OP,
    ("POST", "/provisioner/profile/<profile>"): OP,
    ("PUT", "/provisioner/profile/<profile>"): OP,
    ("POST", "/provisioner/create"): OP,
    ("GET", "/provisioner/status"): RO,
    ("GET", "/provisioner/ova"): RO,
    ("GET", "/provisioner/ova/<name>"): RO,
    ("POST", "/provisioner/ova"): OP,
    ("POST", "/provisioner/ova/<name>"): OP,
    ("DELETE", "/provisioner/ova/<name>"): OP,
    ("GET", "/provisioner/status/<task_id>"): RO,
    ("DELETE", "/provisioner/profile/<profile>"): OP,
    # metrics
    ("GET", "/metrics"): METRICS,
    ("GET", "/metrics/health"): METRICS,
    ("GET", "/metrics/resource"): METRICS,
}

#: The keys in rank order; a role's index is its rank.
RANKED = [RO, OP, AD]


def _declared_role(route) -> str:
    if route.role is None:
        return f"{OPEN}/{route.guard}" if route.guard else OPEN
    return route.role


def _served(app) -> set[tuple[str, str]]:
    """(method, path) of every rule the app serves under the prefix, in declaration syntax."""
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((method, rule.rule[len(PREFIX) :] or "/"))
    return served


def test_the_table_lists_exactly_the_routes_served(api):
    client, _ = api
    served = _served(client.application)
    assert sorted(served - EXPECTED.keys()) == [], "routes served that the role table lacks"
    assert sorted(EXPECTED.keys() - served) == [], "routes in the role table that are not served"


def test_every_declared_role_is_the_expected_one():
    declared = {(route.method, route.path): _declared_role(route) for g in GROUPS for route in g.routes}
    differing = {
        key: (role, EXPECTED.get(key, "missing from the table"))
        for key, role in declared.items()
        if EXPECTED.get(key) != role
    }
    assert differing == {}, "(declared, expected) roles differ"


def _concrete(path: str) -> str:
    return PREFIX + re.sub(r"<[^>]+>", "x1", path)


@pytest.fixture
def stubbed(monkeypatch):
    """Every handler replaced by one that does nothing, so a request that passes
    authorisation changes nothing; argument parsing still runs (400 means authorised)."""
    for group in GROUPS:
        for route in group.routes:

            def stub(**_: object) -> tuple[dict, int]:
                return {"message": "stub"}, 200

            stub.__name__ = route.handler.__name__  # Flask names the view after it
            monkeypatch.setattr(route, "handler", stub)


def _status(client, method: str, path: str, token: str | None) -> int:
    headers = {"X-Api-Key": token} if token else {}
    return client.open(_concrete(path), method=method, headers=headers).status_code


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda key: f"{key[0]} {key[1]}")
def test_each_role_is_enforced_at_its_boundary(api_factory, stubbed, key):
    """The key just below the expected role gets 403; the expected role gets through."""
    method, path = key
    expected = EXPECTED[key]
    if expected.startswith(OPEN):
        flag = expected.partition("/")[2]
        open_client, _ = api_factory(auth=True)
        assert _status(open_client, method, path, None) not in (401, 403)
        if flag:  # with the flag on, it needs a key of any role
            guarded, _ = api_factory(auth=True, **{flag: True})
            assert _status(guarded, method, path, None) == 401
            assert _status(guarded, method, path, TOKENS[RO]) not in (401, 403)
        return
    client, _ = api_factory(auth=True)
    rank = RANKED.index(expected)
    assert _status(client, method, path, None) == 401
    for role in RANKED[:rank]:
        assert _status(client, method, path, TOKENS[role]) == 403, f"{role} may {method} {path}"
    for role in RANKED[rank:]:
        status = _status(client, method, path, TOKENS[role])
        assert status not in (401, 403), f"{role} may not {method} {path}"
