"""Hot attach and detach of a running VM's disks and NICs, as tasks on the VM's node.

The API validates the device XML and the VM (it must be running), then queues
``vm.device_attach`` or ``vm.device_detach`` to run on the node the VM runs on; that
node's task worker changes the live domain through the node daemon's libvirt connection. Only the
running domain changes: clients that want the change kept also save the VM's XML
(``PUT /vm/{vm}``), as the CLI does after a successful hot-plug.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from pvc import tasks
from pvc.cluster.errors import ClusterError
from pvc.cluster.session import Cluster
from pvc.cluster.sriov import vms as sriov_vms
from pvc.cluster.sriov.usage import device_references
from pvc.cluster.tasks import actions as task_actions
from pvc.cluster.tasks.services import NodeTaskContext, need_hypervisor, node_xml_policy
from pvc.cluster.vm.queries import resolve
from pvc.cluster.vm.xml_policy import check_network_bridges, devices_of, network_vnis
from pvc.domain_xml.allowlist import check_device
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import Device, parse, parse_device
from pvc.domain_xml.policy import XmlPolicy
from pvc.hypervisor.errors import HypervisorError
from pvc.state.networks import vnis as defined_vnis
from pvc.state.states import VM_RUNNING
from pvc.state.vms import read_vm
from pvc.tasks import InvalidTaskError, TaskError, task_type

#: Seconds a detach waits for the guest to release a device before the task fails.
DETACH_TIMEOUT = 15.0


def _parse(xml: object, error: type[Exception], policy: XmlPolicy) -> Device:
    """The device checked against the allowlist with ``policy``, or ``error`` (ClusterError
    at the API, InvalidTaskError or TaskError on the node)."""
    if not isinstance(xml, str | bytes):
        raise error("xml must be a <disk> or <interface> element")
    try:
        device = parse_device(xml)
        check_device(etree.fromstring(device.xml), policy)
    except DomainXMLError as problem:
        raise error(f"The device is not allowed: {problem}") from None
    return device


def submit_change(
    cluster: Cluster, vm: str, xml: str, *, policy: XmlPolicy, attach: bool
) -> tasks.TaskRecord:
    """Queue a hot attach (or detach) of device ``xml`` on the node running VM ``vm``.

    ClusterError (400) for bad XML, a device the allowlist refuses with ``policy`` (the
    caller's role), or a VM that is not running; NotFoundError (404) for an unknown VM.
    The task's arguments name the VM by UUID, so a rename meanwhile is harmless. The node
    checks the device again against its own configuration before it changes the VM.
    """
    record = resolve(cluster, vm)
    node = record.placement.running_on or record.placement.node
    role = sriov_vms.with_node_vfs(policy, cluster, node).as_role(policy.admin, devices_of(record.xml))
    device = _parse(xml, ClusterError, role)
    if attach:
        sriov_vms.check_references(cluster, node, device_references(device.xml), record.uuid)
    if attach and device.nic is not None:
        stored = network_vnis(nic.source for nic in parse(record.xml)[1].nics)
        check_network_bridges([device.nic.source], defined_vnis(cluster.cache), stored)
    placement = record.placement
    if placement.state not in VM_RUNNING or not placement.running_on:
        raise ClusterError(
            f"VM '{record.meta.name}' is not running (state {placement.state}); "
            "change its XML instead, the change applies when it next starts"
        )
    kind = device_attach if attach else device_detach
    args = {"domain": record.uuid, "xml": device.xml}
    return task_actions.submit(cluster, kind, placement.running_on, args)


def _check_args(args: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(args.get("xml"), str | bytes):
        raise InvalidTaskError("xml must be a <disk> or <interface> element")
    try:
        device = parse_device(args["xml"])
    except DomainXMLError as problem:
        raise InvalidTaskError(str(problem)) from None
    domain = args.get("domain")
    if not isinstance(domain, str) or not domain:
        raise InvalidTaskError("domain must name a VM")
    return {"domain": domain, "xml": device.xml}


def _running_here(ctx: NodeTaskContext, domain: str) -> str:
    """The VM's name, after checking that it is meant to run on this task's node."""
    record = read_vm(ctx.store.get, domain)
    if record is None:
        raise TaskError(f"VM {domain} no longer exists")
    if record.placement.running_on != ctx.run_on:
        where = record.placement.running_on or "no node"
        raise TaskError(f"VM {record.meta.name} runs on {where}, not on {ctx.run_on}; nothing changed")
    return record.meta.name


def _change(ctx: NodeTaskContext, domain: str, xml: str, *, attach: bool) -> dict[str, str]:
    if attach:
        policy = sriov_vms.with_store_vfs(node_xml_policy(ctx), ctx.store, ctx.run_on)
        device = _parse(xml, TaskError, policy)
    else:
        device = parse_device(xml)
    name = _running_here(ctx, domain)
    verb = "Attaching" if attach else "Detaching"
    ctx.progress(0, 1, f"{verb} {device.label} {'to' if attach else 'from'} VM {name}")
    hypervisor = need_hypervisor(ctx)
    try:
        if attach:
            hypervisor.attach_device(domain, device)
        else:
            hypervisor.detach_device(domain, device, DETACH_TIMEOUT)
    except HypervisorError as error:
        raise TaskError(str(error)) from None
    done = "Attached" if attach else "Detached"
    message = f"{done} {device.label} {'to' if attach else 'from'} VM {name}"
    ctx.progress(1, 1, message)
    return {"message": message}


@task_type("vm.device_attach", validate=_check_args)
def device_attach(ctx: NodeTaskContext, *, domain: str, xml: str) -> dict[str, str]:
    """Hot-plug the device ``xml`` into running VM ``domain`` (a UUID) on this node."""
    return _change(ctx, domain, xml, attach=True)


@task_type("vm.device_detach", validate=_check_args)
def device_detach(ctx: NodeTaskContext, *, domain: str, xml: str) -> dict[str, str]:
    """Hot-unplug the device ``xml`` from running VM ``domain`` (a UUID) on this node."""
    return _change(ctx, domain, xml, attach=False)
