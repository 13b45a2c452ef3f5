"""A VM in the PVC v1 API shape, from its record, its XML and its node's statistics.

The API serves these through :class:`pvc.cluster.vm.listing.VmListing`, which keeps them
serialised per VM.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from pvc.cluster.figures import NOT_KNOWN
from pvc.domain_xml.bridges import vni_of_bridge
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import parse, pretty
from pvc.state.vms import VmRecord


@dataclass(frozen=True)
class XmlFacts:
    """What the API shows from a VM's XML (parsed once per XML version)."""

    domain_type: str
    arch: str
    machine: str
    console: str
    emulator: str
    features: list[str]
    vcpu_topology: str
    vnc_listen: str
    vnc_port: str
    networks: list[dict]
    disks: list[dict]
    controllers: list[dict]
    #: The XML as the API returns it (see :func:`pvc.domain_xml.parse.pretty`).
    xml: str = ""


def xml_facts(xml: str) -> XmlFacts:
    """Read the displayed facts from stored (already validated) XML."""
    try:
        root, summary = parse(xml)
    except DomainXMLError:
        return XmlFacts("", "", "", "", "", [], "", "", "", [], [], [], xml=pretty(xml))
    os_type = root.find("os/type")
    serial = root.find("devices/serial")
    topology = root.find("cpu/topology")
    features = root.find("features")
    networks = []
    for nic in summary.nics:
        networks.append(
            {
                "type": nic.kind,
                "mac": nic.mac,
                "source": nic.source,
                "vni": vni_of_bridge(nic.source) or 0,
                "model": nic.model,
            }
        )
    topology_text = NOT_KNOWN  # as PVC v1 shows a VM without <cpu><topology>
    if topology is not None:
        topology_text = "/".join(topology.get(key, "1") for key in ("sockets", "cores", "threads"))
    return XmlFacts(
        domain_type=summary.domain_type,
        arch=os_type.get("arch", "") if os_type is not None else "",
        machine=os_type.get("machine", "") if os_type is not None else "",
        console=serial.get("type", "") if serial is not None else "",
        emulator=(root.findtext("devices/emulator") or "").strip(),
        features=[child.tag for child in features if isinstance(child.tag, str)]
        if features is not None
        else [],
        vcpu_topology=topology_text,
        vnc_listen=summary.vnc_listen,
        vnc_port=str(summary.vnc_port) if summary.vnc_port >= 0 else "",
        networks=networks,
        disks=[
            {"type": disk.kind, "name": disk.source, "dev": disk.target, "bus": disk.bus}
            for disk in summary.disks
        ],
        controllers=[
            {"type": c.get("type", ""), "model": c.get("model", "")}
            for c in root.findall("devices/controller")
        ],
        xml=etree.tostring(root, pretty_print=True, encoding="unicode"),  # parsed once: no second pass
    )


NIC_COUNTERS = (
    "rd_bytes",
    "rd_packets",
    "rd_errors",
    "rd_drops",
    "wr_bytes",
    "wr_packets",
    "wr_errors",
    "wr_drops",
)
DISK_COUNTERS = ("rd_req", "rd_bytes", "wr_req", "wr_bytes")
MEMORY_STATS = (
    "actual",
    "swap_in",
    "swap_out",
    "major_fault",
    "minor_fault",
    "unused",
    "available",
    "usable",
    "last_update",
    "rss",
)
VCPU_STATS = ("cpu_time", "user_time", "system_time")


def static_view(record: VmRecord, facts: XmlFacts) -> dict:
    """Every field of the API shape except the live statistics."""
    meta, placement = record.meta, record.placement
    return {
        "name": meta.name,
        "uuid": record.uuid,
        "state": placement.state,
        "node": placement.node,
        "last_node": placement.last_node,
        "migrated": f"from {placement.last_node}" if placement.last_node else "no",
        "failed_reason": placement.failed_reason,
        "node_limit": list(meta.node_limit),
        "node_selector": meta.node_selector,
        "node_autostart": meta.node_autostart,
        "migration_method": meta.migration_method,
        "migration_max_downtime": meta.migration_max_downtime,
        "tags": list(meta.tags),
        "snapshots": [],
        "description": meta.description,
        "profile": meta.profile,
        "memory": meta.memory_mib,
        "vcpu": meta.vcpus,
        "vcpu_topology": facts.vcpu_topology,
        "type": facts.domain_type,
        "arch": facts.arch,
        "machine": facts.machine,
        "console": facts.console,
        "vnc": {"listen": facts.vnc_listen, "port": facts.vnc_port},
        "emulator": facts.emulator,
        "features": list(facts.features),
        "controllers": list(facts.controllers),
        "xml": facts.xml,
    }


def _counters(reported: object, keys: tuple[str, ...]) -> dict[str, int | str]:
    """``keys`` from one reported mapping as integers; a key not reported is N/A, never 0."""
    values = reported if isinstance(reported, dict) else {}
    return {key: int(values[key]) if values.get(key) is not None else NOT_KNOWN for key in keys}


def stats_view(facts: XmlFacts, stats: dict | None) -> dict:
    """The live statistics fields, from the per-VM figures in its node's keepalive.

    ``stats`` holds ``memory`` and ``vcpu`` mappings, ``disks`` by target device and
    ``nics`` by position in the XML (as :meth:`pvc.hypervisor.Hypervisor.vm_stats` gives);
    it is None for a VM that is not running. As in PVC v1, a VM that is not running has
    empty ``memory_stats`` and ``vcpu_stats``, and its NICs and disks keep every counter
    key (v1 always lists them) with the value N/A. A running VM's counter that libvirt did
    not report is N/A as well.
    """
    if stats is None:
        idle_nic, idle_disk = dict.fromkeys(NIC_COUNTERS, NOT_KNOWN), dict.fromkeys(DISK_COUNTERS, NOT_KNOWN)
        return {
            "memory_stats": {},
            "vcpu_stats": {},
            "networks": [{**nic, **idle_nic} for nic in facts.networks],
            "disks": [{**disk, **idle_disk} for disk in facts.disks],
        }
    nic_stats = stats.get("nics") if isinstance(stats.get("nics"), dict) else {}
    disk_stats = stats.get("disks") if isinstance(stats.get("disks"), dict) else {}
    return {
        "memory_stats": _counters(stats.get("memory"), MEMORY_STATS),
        "vcpu_stats": _counters(stats.get("vcpu"), VCPU_STATS),
        "networks": [
            {**nic, **_counters(nic_stats.get(str(index)), NIC_COUNTERS)}
            for index, nic in enumerate(facts.networks)
        ],
        "disks": [{**disk, **_counters(disk_stats.get(disk["dev"]), DISK_COUNTERS)} for disk in facts.disks],
    }


def to_api(record: VmRecord, stats: dict | None = None) -> dict:
    """A VM in the PVC v1 shape (uncached; the API serves :mod:`pvc.cluster.vm.listing`);
    ``stats`` None: the VM is not running (see :func:`stats_view`)."""
    facts = xml_facts(record.xml)
    return {**static_view(record, facts), **stats_view(facts, stats)}
