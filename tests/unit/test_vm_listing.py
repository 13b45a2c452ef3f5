"""The API's per-VM view cache: what it renders follows the VM's XML and its node's keepalive."""

from __future__ import annotations

import json
from dataclasses import replace

from pvc.cluster.vm.listing import VmListing
from pvc.domain_xml import build as domain_xml
from pvc.state import paths
from pvc.state.records import Keepalive, encode
from pvc.state.vm_snapshots import VmSnapshot
from pvc.state.vms import VmMeta, VmPlacement, VmRecord

UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


class FakeCache:
    """The few ClusterCache calls VmListing makes, over a dict; ``change`` fires listeners."""

    def __init__(self) -> None:
        self.vms: dict[str, VmRecord] = {}
        self.znodes: dict[str, tuple[bytes, int]] = {}
        self.listeners = []

    def listen(self, callback) -> None:
        self.listeners.append(callback)

    def vm(self, uuid: str) -> VmRecord | None:
        return self.vms.get(uuid)

    def vm_uuids(self) -> list[str]:
        return list(self.vms)

    def keepalive_zxid(self, node: str) -> int:
        return self.znodes.get(paths.node_keepalive(node), (b"", 0))[1]

    def keepalive(self, node: str) -> Keepalive | None:
        return Keepalive.from_bytes(self.znodes.get(paths.node_keepalive(node), (None, 0))[0])

    def data(self, path: str) -> bytes | None:
        return self.znodes.get(path, (None, 0))[0]

    def children(self, path: str) -> list[str]:
        prefix = path + "/"
        return sorted({key[len(prefix) :].split("/")[0] for key in self.znodes if key.startswith(prefix)})

    def change(self, path: str) -> None:
        for callback in self.listeners:
            callback(path)


def vm_with_disks(*targets: str) -> VmRecord:
    paths_ = [f"/img/{t}.img" for t in targets]
    xml = domain_xml.build(domain_xml.DomainSpec(name="web1", uuid=UUID, disks=paths_))
    for index, target in enumerate(targets):  # build names them vda, vdb...: use the given ones
        xml = xml.replace(f'dev="vd{chr(ord("a") + index)}"', f'dev="{target}"')
    meta = VmMeta(name="web1", uuid=UUID)
    return VmRecord(UUID, meta, VmPlacement(state="start", node="hv1", running_on="hv1"), xml)


def test_a_changed_xml_is_rendered_again_while_the_keepalive_stays_the_same():
    cache = FakeCache()
    keepalive = Keepalive(timestamp=1.0, vm_stats={UUID: {"disks": {"vda": {"rd_req": 7}}}})
    cache.znodes[paths.node_keepalive("hv1")] = (encode(keepalive), 100)
    cache.vms[UUID] = vm_with_disks("vda")
    views = VmListing(cache)
    first = json.loads(views.render_one(UUID))[0]
    assert [d["dev"] for d in first["disks"]] == ["vda"] and first["disks"][0]["rd_req"] == 7

    cache.vms[UUID] = vm_with_disks("vda", "vdb")  # a disk hot-plugged, the XML saved
    cache.change(paths.domain_xml(UUID))
    second = json.loads(views.render_one(UUID))[0]
    assert [d["dev"] for d in second["disks"]] == ["vda", "vdb"]
    assert second["disks"][0]["rd_req"] == 7 and second["disks"][1]["rd_req"] == "N/A"

    keepalive = Keepalive(timestamp=2.0, vm_stats={UUID: {"disks": {"vda": {"rd_req": 9}}}})
    cache.znodes[paths.node_keepalive("hv1")] = (encode(keepalive), 101)
    assert json.loads(views.render_one(UUID))[0]["disks"][0]["rd_req"] == 9


def test_a_vm_that_is_not_running_is_served_without_figures():
    cache = FakeCache()
    cache.znodes[paths.node_keepalive("hv1")] = (encode(Keepalive(timestamp=1.0)), 100)
    stopped = vm_with_disks("vda")
    cache.vms[UUID] = VmRecord(UUID, stopped.meta, VmPlacement(state="stop", node="hv1"), stopped.xml)
    view = json.loads(VmListing(cache).render_one(UUID))[0]
    assert view["memory_stats"] == {} and view["vcpu_stats"] == {}
    assert view["disks"][0]["dev"] == "vda"
    assert {
        key: view["disks"][0][key] for key in ("rd_req", "rd_bytes", "wr_req", "wr_bytes")
    } == dict.fromkeys(("rd_req", "rd_bytes", "wr_req", "wr_bytes"), "N/A")


def test_snapshots_are_listed_with_their_age_at_each_request():
    cache = FakeCache()
    record = vm_with_disks("vda")
    cache.vms[UUID] = record
    old_xml = record.xml.replace("<memory", "<!-- then --><memory")
    taken = VmSnapshot(
        name="before-upgrade",
        timestamp=1_000_000.0,
        xml=old_xml,
        rbd_snapshots=["vms/web1_sda@before-upgrade"],
    )
    cache.znodes[paths.domain_snapshot(UUID, "before-upgrade")] = (encode(replace(taken, complete=True)), 5)
    cache.znodes[paths.domain_snapshot(UUID, "being-made")] = (encode(VmSnapshot(name="being-made")), 6)
    views = VmListing(cache)
    view = json.loads(views.render(views.records(), now=1_000_045.0))[0]
    assert list(view).index("snapshots") == list(view).index("tags") + 1  # the v1 order is kept
    assert [{k: v for k, v in snap.items() if k != "xml_diff_lines"} for snap in view["snapshots"]] == [
        {
            "name": "before-upgrade",
            "timestamp": "1000000",
            "age": "45s",
            "rbd_snapshots": ["vms/web1_sda@before-upgrade"],
        }
    ]  # the one still being made is not listed
    later = json.loads(views.render(views.records(), now=1_000_000.0 + 3 * 3600 + 120))[0]
    assert [snap["age"] for snap in later["snapshots"]] == ["3h2m"]  # same cached entry, later request
    diff = later["snapshots"][0]["xml_diff_lines"]
    assert any(line.startswith("-") and "<!-- then -->" in line for line in diff)
    assert any(line.startswith("+") and "<memory" in line for line in diff)

    del cache.znodes[paths.domain_snapshot(UUID, "before-upgrade")]
    cache.change(paths.domain_snapshot(UUID, "before-upgrade"))
    assert json.loads(views.render_one(UUID))[0]["snapshots"] == []
