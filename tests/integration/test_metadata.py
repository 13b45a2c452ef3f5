"""The metadata service over a real ZooKeeper and PostgreSQL: a VM is known by the address
its lease or reservation gives it, learns only about itself, and gets its profile's
userdata with its own name filled in."""

from __future__ import annotations

import pytest

from pvc.cluster.network import actions
from pvc.cluster.provisioner import documents, profiles, requester, templates
from pvc.cluster.session import Cluster
from pvc.domain_xml.build import DomainSpec, build
from pvc.metadata.app import create_metadata_app
from pvc.metadata.limits import SourceLimiter
from pvc.state import networks as records
from pvc.state.vms import VmMeta, VmPlacement, create_vm

NET = {
    "domain": "vms.lab",
    "ip4_network": "10.60.0.0/24",
    "ip4_gateway": "10.60.0.1",
    "dhcp4": True,
    "dhcp4_start": "10.60.0.100",
    "dhcp4_end": "10.60.0.200",
}
USERDATA = "#cloud-config\nhostname: {vm_name}\nfqdn: {vm_name}.lab\n# profile {profile}\n"


def add_vm(cluster: Cluster, name: str, mac: str, profile: str = "") -> str:
    xml = build(DomainSpec(name=name, bridges=["vmbr60"], macs=[mac]))
    uuid = xml.split("<uuid>")[1].split("</uuid>")[0]
    meta = VmMeta(name=name, uuid=uuid, memory_mib=128, vcpus=1, profile=profile)
    cluster.settle(create_vm(cluster.store, meta, VmPlacement(node="hv1"), xml))
    return uuid


@pytest.fixture
def metadata(domain_cluster, provisioner_db):
    actions.add_network(domain_cluster, 60, "vms", "managed", **NET)
    with provisioner_db.session() as session:
        templates.add_system(
            session, "tiny", templates.SystemSettings(vcpus=1, vram=128, serial=True, vnc=False)
        )
        documents.add_document(session, documents.KINDS["userdata"], "basic", USERDATA)
        documents.add_document(session, documents.KINDS["script"], "noop", "def install(vm):\n    pass\n")
        profiles.add_profile(
            session,
            "web",
            "provisioner",
            profiles.ProfileSettings(system_template="tiny", userdata="basic", script="noop"),
        )
        profiles.add_profile(
            session, "bare", "provisioner", profiles.ProfileSettings(system_template="tiny", script="noop")
        )
    wire: dict[str, str] = {}  # what the neighbour table would hold: address -> MAC on the wire
    app = create_metadata_app(domain_cluster, provisioner_db, wire_mac=wire.get)
    return domain_cluster, app.test_client(), wire


def get(client, path: str, address: str):
    reply = client.get(path, environ_base={"REMOTE_ADDR": address})
    return reply.status_code, reply.get_data(as_text=True)


def test_a_vm_with_a_lease_gets_its_own_metadata_and_userdata(metadata):
    cluster, client, wire = metadata
    uuid = add_vm(cluster, "web1", "52:54:00:60:00:01", profile="web")
    add_vm(cluster, "web2", "52:54:00:60:00:02", profile="web")
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:01", "10.60.0.101", hostname="web1"))
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:02", "10.60.0.102", hostname="web2"))
    wire.update({"10.60.0.101": "52:54:00:60:00:01", "10.60.0.102": "52:54:00:60:00:02"})
    assert get(client, "/latest/meta-data/instance-id", "10.60.0.101") == (200, uuid)
    assert get(client, "/latest/meta-data/hostname", "10.60.0.101") == (200, "web1")
    assert get(client, "/2009-04-04/meta-data/local-ipv4", "10.60.0.101") == (200, "10.60.0.101")
    assert get(client, "/latest/meta-data/mac", "10.60.0.101") == (200, "52:54:00:60:00:01")
    status, keys = get(client, "/latest/meta-data/", "10.60.0.101")
    assert status == 200 and "instance-id\n" in keys and "hostname\n" in keys
    status, userdata = get(client, "/latest/user-data", "10.60.0.101")
    assert status == 200
    assert userdata == "#cloud-config\nhostname: web1\nfqdn: web1.lab\n# profile web\n"
    # the other VM, from its own address, sees only itself
    assert get(client, "/latest/meta-data/hostname", "10.60.0.102") == (200, "web2")
    assert "hostname: web2" in get(client, "/latest/user-data", "10.60.0.102")[1]


def test_a_reservation_identifies_a_vm_too(metadata):
    cluster, client, wire = metadata
    add_vm(cluster, "db1", "52:54:00:60:00:10", profile="web")
    actions.add_reservation(cluster, 60, "52:54:00:60:00:10", "10.60.0.10", "db1")
    wire["10.60.0.10"] = "52:54:00:60:00:10"
    assert get(client, "/latest/meta-data/local-hostname", "10.60.0.10") == (200, "db1")


def test_unknown_addresses_keys_and_profiles_without_userdata_are_not_found(metadata):
    cluster, client, wire = metadata
    add_vm(cluster, "bare1", "52:54:00:60:00:20", profile="bare")
    add_vm(cluster, "hand1", "52:54:00:60:00:21")  # defined by hand: no profile
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:20", "10.60.0.120"))
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:21", "10.60.0.121"))
    # a lease whose MAC no VM has
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:99", "10.60.0.199"))
    wire.update(
        {
            "10.60.0.120": "52:54:00:60:00:20",
            "10.60.0.121": "52:54:00:60:00:21",
            "10.60.0.199": "52:54:00:60:00:99",
        }
    )
    assert get(client, "/latest/meta-data/hostname", "10.60.0.50")[0] == 404
    assert get(client, "/latest/meta-data/hostname", "10.60.0.199")[0] == 404
    assert get(client, "/latest/user-data", "10.60.0.120")[0] == 404
    assert get(client, "/latest/user-data", "10.60.0.121")[0] == 404
    assert get(client, "/latest/meta-data/../../etc/passwd", "10.60.0.120")[0] == 404
    assert get(client, "/latest/meta-data/secret-key", "10.60.0.120")[0] == 404
    assert get(client, "/1.0/meta-data/hostname", "10.60.0.120")[0] == 404
    assert get(client, "/latest/meta-data/hostname", "10.60.0.120") == (200, "bare1")


def test_without_a_database_userdata_is_unavailable_but_meta_data_answers(domain_cluster):
    actions.add_network(domain_cluster, 60, "vms", "managed", **NET)
    add_vm(domain_cluster, "solo", "52:54:00:60:00:30", profile="web")
    domain_cluster.settle(records.put_lease(domain_cluster.store, 60, "52:54:00:60:00:30", "10.60.0.130"))
    wire = {"10.60.0.130": "52:54:00:60:00:30"}.get
    client = create_metadata_app(domain_cluster, None, wire_mac=wire).test_client()
    assert get(client, "/latest/meta-data/hostname", "10.60.0.130") == (200, "solo")
    assert get(client, "/latest/user-data", "10.60.0.130")[0] == 503  # it should be there: retry
    off = create_metadata_app(domain_cluster, None, wire_mac=wire, database_off=True).test_client()
    assert get(off, "/latest/user-data", "10.60.0.130")[0] == 404  # the cluster runs no database


def test_a_vm_claiming_another_vms_mac_in_dhcp_learns_nothing(metadata):
    cluster, client, wire = metadata
    add_vm(cluster, "victim1", "52:54:00:60:00:40", profile="web")
    add_vm(cluster, "thief2", "52:54:00:60:00:41", profile="web")
    # the thief asked DHCP for a lease with the victim's MAC, but sends from its own
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:40", "10.60.0.140"))
    wire["10.60.0.140"] = "52:54:00:60:00:41"
    assert get(client, "/latest/user-data", "10.60.0.140")[0] == 404
    assert get(client, "/latest/meta-data/hostname", "10.60.0.140")[0] == 404
    # with no neighbour entry at all, nothing either
    del wire["10.60.0.140"]
    assert get(client, "/latest/meta-data/hostname", "10.60.0.140")[0] == 404
    # the victim itself, from the wire, is answered
    wire["10.60.0.140"] = "52:54:00:60:00:40"
    assert get(client, "/latest/meta-data/hostname", "10.60.0.140") == (200, "victim1")


def test_two_vms_with_one_mac_are_both_refused(metadata):
    cluster, client, wire = metadata
    add_vm(cluster, "twin1", "52:54:00:60:00:50", profile="web")
    add_vm(cluster, "twin2", "52:54:00:60:00:50", profile="web")
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:50", "10.60.0.150"))
    wire["10.60.0.150"] = "52:54:00:60:00:50"
    assert get(client, "/latest/user-data", "10.60.0.150")[0] == 404


def test_an_address_asking_too_often_is_slowed_down_and_others_are_still_served(
    domain_cluster, provisioner_db
):
    actions.add_network(domain_cluster, 60, "vms", "managed", **NET)
    add_vm(domain_cluster, "busy1", "52:54:00:60:00:41")
    add_vm(domain_cluster, "calm1", "52:54:00:60:00:42")
    domain_cluster.settle(records.put_lease(domain_cluster.store, 60, "52:54:00:60:00:41", "10.60.0.141"))
    domain_cluster.settle(records.put_lease(domain_cluster.store, 60, "52:54:00:60:00:42", "10.60.0.142"))
    wire = {"10.60.0.141": "52:54:00:60:00:41", "10.60.0.142": "52:54:00:60:00:42"}
    limiter = SourceLimiter(rate=0.001, burst=5)
    client = create_metadata_app(
        domain_cluster, provisioner_db, wire_mac=wire.get, limiter=limiter
    ).test_client()
    answers = [get(client, "/latest/meta-data/hostname", "10.60.0.141") for _ in range(8)]
    assert answers[:5] == [(200, "busy1")] * 5
    assert [status for status, _ in answers[5:]] == [429] * 3
    assert get(client, "/latest/meta-data/hostname", "10.60.0.142") == (200, "calm1")


def test_a_vms_definition_is_parsed_once_not_on_every_request(metadata, monkeypatch):
    cluster, client, wire = metadata
    add_vm(cluster, "memo1", "52:54:00:60:00:51")
    cluster.settle(records.put_lease(cluster.store, 60, "52:54:00:60:00:51", "10.60.0.151"))
    wire["10.60.0.151"] = "52:54:00:60:00:51"
    parsed = []
    real_parse = requester.parse
    monkeypatch.setattr(requester, "parse", lambda xml: parsed.append(xml) or real_parse(xml))
    cluster.cache.forget_parsed()
    assert get(client, "/latest/meta-data/hostname", "10.60.0.151") == (200, "memo1")
    first = len(parsed)
    assert first == len(cluster.cache.vms())  # each definition once
    for _ in range(5):
        assert get(client, "/latest/meta-data/hostname", "10.60.0.151") == (200, "memo1")
    assert len(parsed) == first
