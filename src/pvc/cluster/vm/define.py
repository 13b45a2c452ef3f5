"""Defining VMs: client XML checked, placement rules checked, a node chosen; modify and rename.

Clients only write desired state; the node daemons make libvirt match it (see
:mod:`pvc.node.vm_manager`). State and placement requests live in :mod:`.actions`.
"""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Iterable
from dataclasses import replace

from lxml import etree

from pvc.cluster.errors import ClusterError
from pvc.cluster.session import Cluster
from pvc.cluster.sriov import vms as sriov_vms
from pvc.cluster.vm.actions import request_state
from pvc.cluster.vm.meta import user_tags_of
from pvc.cluster.vm.placement import choose_node, effective_selector
from pvc.cluster.vm.queries import resolve
from pvc.cluster.vm.rules import check_placement
from pvc.cluster.vm.xml_policy import check_network_bridges, check_xml, devices_of, network_vnis
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import NAME, DomainSummary, parse
from pvc.domain_xml.policy import XmlPolicy
from pvc.state.errors import ConflictError
from pvc.state.networks import vnis as defined_vnis
from pvc.state.states import Selector, VMState
from pvc.state.vms import VmMeta, VmPlacement, create_vm, rename_vm, replace_definition


def parse_xml(xml: str, policy: XmlPolicy, *, uuid: str = "") -> tuple[str, DomainSummary]:
    """Validate client XML against the allowlist with ``policy``; returns it (with a UUID
    added when it had none) and its summary."""
    try:
        root, summary = parse(xml)
    except DomainXMLError as error:
        raise ClusterError(str(error)) from None
    check_xml(root, policy)
    if uuid and summary.uuid and summary.uuid != uuid:
        raise ClusterError(f"the XML's UUID '{summary.uuid}' differs from the VM's UUID '{uuid}'")
    if summary.uuid:
        return xml, summary
    element = etree.Element("uuid")
    element.text = uuid or str(uuid_mod.uuid4())
    root.insert(1, element)
    text = etree.tostring(root, pretty_print=True, encoding="unicode")
    return text, replace(summary, uuid=element.text)


def _stored_vnis(xml: str) -> set[int]:
    """The VNIs of the network bridges in a VM's stored XML."""
    try:
        _, summary = parse(xml)
    except DomainXMLError:
        return set()
    return network_vnis(nic.source for nic in summary.nics)


# -- define, modify, rename ----------------------------------------------------------------


def define(
    cluster: Cluster,
    xml: str,
    *,
    policy: XmlPolicy,
    name: str | None = None,
    node: str | None = None,
    limit: str | Iterable[str] | None = None,
    selector: str | None = None,
    autostart: bool = False,
    migration_method: str | None = None,
    migration_max_downtime: int | None = None,
    user_tags: Iterable[str] = (),
    protected_tags: Iterable[str] = (),
    default_selector: str = Selector.MEM,
    profile: str = "",
    state: str = VMState.STOP,
) -> tuple[str, str]:
    """Add a VM (stopped, or in ``state``) from client XML; returns its UUID and the reply message.

    With ``name``, the XML must name the VM so. ``policy`` is the allowlist's settings with
    the caller's role (see :mod:`pvc.cluster.vm.xml_policy`).
    """
    cache = cluster.cache
    xml, summary = parse_xml(xml, sriov_vms.with_node_vfs(policy, cluster, node))
    check_network_bridges((nic.source for nic in summary.nics), defined_vnis(cache))
    if name is not None and summary.name != name:
        raise ClusterError(f"the XML names the VM '{summary.name}', not '{name}'")
    if cache.vm_uuid_by_name(summary.name):
        raise ClusterError(f"A VM named '{summary.name}' already exists")
    if cache.vm(summary.uuid):
        raise ClusterError(f"A VM with UUID '{summary.uuid}' already exists")
    rules = check_placement(
        cluster,
        limit=limit,
        selector=selector,
        autostart=autostart,
        migration_method=migration_method,
        migration_max_downtime=migration_max_downtime,
    )
    if node:
        if cache.node(node) is None:
            raise ClusterError(f"Node '{node}' does not exist")
        if rules.node_limit and node not in rules.node_limit:
            raise ClusterError(f"Node '{node}' is not in the VM's node limit")
        sriov_vms.check_vm_xml(cluster, node, xml)
    else:
        unfit = sriov_vms.nodes_without(cluster, xml)
        node = choose_node(
            cache.nodes(),
            cache.vms(),
            selector=effective_selector(rules.node_selector, default_selector),
            node_limit=rules.node_limit,
            exclude=unfit,
        )
        if node is None:
            why = " with the SR-IOV VFs it names free" if unfit else ""
            raise ClusterError(f"No node{why} is ready to take the VM")
    rules = replace(rules, migration_method=sriov_vms.hostdev_method(xml, rules.migration_method))
    meta = VmMeta(
        name=summary.name,
        uuid=summary.uuid,
        vcpus=summary.vcpus,
        memory_mib=summary.memory_mib,
        tags=user_tags_of(user_tags, protected_tags),
        profile=profile,
        **vars(rules),
    )
    try:
        commit = create_vm(cluster.store, meta, VmPlacement(state=state, node=node), xml)
    except ConflictError:
        raise ClusterError(
            f"A VM named '{summary.name}' or with UUID '{summary.uuid}' already exists"
        ) from None
    cluster.settle(commit)
    return summary.uuid, f"Added new VM with Name '{summary.name}' and UUID '{summary.uuid}' on node '{node}'"


def modify(cluster: Cluster, vm: str, xml: str, *, policy: XmlPolicy, restart: bool = False) -> str:
    """Replace a VM's XML (same name and UUID); with ``restart``, restart it if it runs.

    A running VM that is not restarted gets the change at its next start. Devices only an
    admin may add (file disks, host devices) may be kept unchanged by any caller.
    """
    record = resolve(cluster, vm)
    node = record.placement.node
    role = sriov_vms.with_node_vfs(policy, cluster, node).as_role(policy.admin, devices_of(record.xml))
    xml, summary = parse_xml(xml, role, uuid=record.uuid)
    sriov_vms.check_vm_xml(cluster, node, xml, record.uuid)
    check_network_bridges(
        (nic.source for nic in summary.nics), defined_vnis(cluster.cache), _stored_vnis(record.xml)
    )
    if summary.name != record.meta.name:
        raise ClusterError(
            f"the XML names the VM '{summary.name}' but it is '{record.meta.name}'; use rename to change it"
        )
    method = sriov_vms.hostdev_method(xml, record.meta.migration_method, record.xml)
    meta = replace(record.meta, vcpus=summary.vcpus, memory_mib=summary.memory_mib, migration_method=method)
    try:
        commit = replace_definition(cluster.store, meta, cluster.cache.vm_meta_version(record.uuid), xml)
    except ConflictError:
        raise ClusterError(f"VM '{vm}' changed while it was being modified; try again") from None
    cluster.settle(commit)
    message = f"Modified VM '{record.meta.name}'"
    if method != record.meta.migration_method:
        message += f" (migration method now {method}: an SR-IOV VF as a PCI device cannot move live)"
    if restart and record.placement.running_on:
        request_state(cluster, record.uuid, VMState.RESTART)
        return message + "; restarting it"
    if record.placement.running_on:
        return message + "; the change applies at its next start"
    return message


def rename(cluster: Cluster, vm: str, new_name: str) -> str:
    """Rename a stopped VM: its name index entry, metadata and XML change together."""
    record = resolve(cluster, vm)
    if not NAME.fullmatch(new_name or ""):
        raise ClusterError(f"VM name '{new_name}' is invalid: 1-63 letters, digits, '.', '_', '-'")
    if cluster.cache.vm_uuid_by_name(new_name):
        raise ClusterError(f"A VM named '{new_name}' already exists")
    if record.placement.state not in (VMState.STOP, VMState.DISABLE) or record.placement.running_on:
        raise ClusterError(f"VM '{record.meta.name}' must be stopped or disabled before it is renamed")
    root, _ = parse(record.xml)
    root.find("name").text = new_name
    xml = etree.tostring(root, pretty_print=True, encoding="unicode")
    version = cluster.cache.vm_meta_version(record.uuid)
    try:
        commit = rename_vm(cluster.store, record.meta.name, replace(record.meta, name=new_name), version, xml)
    except ConflictError:
        raise ClusterError(f"VM '{record.meta.name}' changed while it was being renamed; try again") from None
    cluster.settle(commit)
    return f"Renamed VM '{record.meta.name}' to '{new_name}'"
