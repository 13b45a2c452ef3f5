"""``pvc vm vcpu|memory|network|volume``: read and change a VM's size, network interfaces and disks.

Changes are made to the domain XML client-side (:mod:`pvc.domain_xml.edit`) and sent back whole with
``PUT /vm/{vm}`` (``xml`` in the body, ``restart`` in the query). With ``-l/--live`` (the default) the
interfaces and disks of a running VM are also hot-plugged first, by ``POST``/``DELETE /vm/{vm}/device``
with the device's XML: a task the command waits for. ``-r/--restart`` restarts the VM to apply a
change; without ``-r`` or ``-R`` the command asks (unless the change was made live, the VM is not
running, or ``--yes``/``--unsafe`` was given, which mean no restart).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from pvc.cli.confirm import confirm, yes_option
from pvc.cli.context import CliContext, CliError, options
from pvc.cli.output import emit_data, emit_lines, format_option
from pvc.cli.vm_common import domain_argument, emit_reply, fetch_vm, reply_message, task_result, vm_path
from pvc.cli.vm_views import memory_pretty, network_id, networks_pretty, vcpus_pretty, volumes_pretty
from pvc.client.http import ApiClient, segment
from pvc.client.waiters import TASK_SUCCESS
from pvc.domain_xml.bridges import bridge_name
from pvc.domain_xml.edit import (
    DEFAULT_NIC_MODEL,
    DISK_TYPES,
    Element,
    add_disk,
    add_interface,
    disk_element,
    effective_vcpus,
    interface_element,
    next_target,
    normalize_mac,
    parse_count,
    parse_memory,
    parse_topology,
    parse_vni,
    random_mac,
    read_memory,
    remove_disk,
    remove_interface,
    remove_sriov_interface,
    serialize,
    set_memory,
    set_vcpus,
    sriov_interface_element,
)
from pvc.domain_xml.errors import DomainXMLError
from pvc.domain_xml.parse import load

RUNNING = "start"
DISK_BUSES = ("scsi", "ide", "usb", "virtio")
SRIOV_MODES = ("hostdev", "macvtap")

restart_option = click.option(
    "-r/-R",
    "--restart/--no-restart",
    "restart_flag",
    default=None,
    help="Restart the VM to apply the change, or not [default: ask].",
)
live_option = click.option(
    "-l/-L",
    "--live/--no-live",
    "live_flag",
    default=True,
    help="Also change the running VM (hot-plug) when it is running [default: live].",
)
get_format_option = format_option("pretty", "raw", "json", "json-pretty")


@contextmanager
def _xml_errors(domain: str | None = None) -> Iterator[None]:
    """Turn :class:`DomainXMLError` into a one-line :class:`CliError`."""
    try:
        yield
    except DomainXMLError as exc:
        raise CliError(f"VM {domain}: {exc}" if domain else str(exc)) from exc


def _load(client: ApiClient, domain: str) -> tuple[dict[str, Any], Element]:
    """The VM's object and its parsed domain XML."""
    vm = fetch_vm(client, domain)
    with _xml_errors(domain):
        return vm, load(str(vm.get("xml") or ""))


def _vf_pci(domain: str, vf: str, *, required: bool) -> str:
    """The PCI address of VF ``vf`` of VM DOMAIN's node (``GET /sriov/vf/{node}/{vf}``); "" when
    the node has no such VF and ``required`` is False."""
    client = options().client()
    node = str(fetch_vm(client, domain).get("node") or "")
    reply = client.get(f"/sriov/vf/{segment(node)}/{segment(vf)}")
    if reply.status == 404 and not required:
        return ""
    item = reply.expect_one(f"VF {vf} of node {node}")
    pci = str(item.get("pci") or "") if isinstance(item, dict) else ""
    if not pci and required:
        raise CliError(f"VF {vf} of node {node} has no PCI address recorded")
    return pci


def decide_restart(
    cli: CliContext,
    domain: str,
    vm: dict[str, Any],
    restart_flag: bool | None,
    confirm_flag: bool,
    live: bool = False,
) -> bool:
    """Whether to restart the VM to apply the change (asking when that is the user's call): yes
    with ``-r`` (confirmed unless ``confirm_flag``/``--unsafe``); no with ``-R``, a live change, a
    VM that is not running, ``confirm_flag`` or ``--unsafe``; otherwise the answer to a question."""
    if restart_flag:
        confirm(f"Restart VM {domain}", confirm_flag)
        return True
    if restart_flag is False or live or vm.get("state") != RUNNING:
        return False
    if confirm_flag or cli.unsafe:
        return False
    try:
        return click.confirm(
            f"Restart VM {domain} to apply the change?", default=False, prompt_suffix=" ", err=True
        )
    except click.Abort:
        click.echo(err=True)
        return False


def _hotplug(cli: CliContext, client: ApiClient, domain: str, method: str, device: Element) -> None:
    """Attach (POST) or detach (DELETE) a device of the running VM and wait for the task."""
    reply = client.request(method, vm_path(domain, "device"), data={"xml": serialize(device)})
    data = reply.expect(200, 202)
    result = task_result(cli, client, data)
    if result is None:
        if reply_message(data):
            cli.emit(reply_message(data))
        return
    state, status = result
    if state != TASK_SUCCESS:
        verb = "Attaching the device to" if method == "POST" else "Detaching the device from"
        raise CliError(
            f"{verb} running VM {domain} failed ({state}: {status}); its configuration was not changed "
            "(--no-live changes only the configuration)"
        )
    if status:
        cli.emit(status)


def _edit(
    domain: str,
    change: Callable[[Element], tuple[str, Element] | None],
    restart_flag: bool | None,
    confirm_flag: bool,
    live_flag: bool = False,
) -> None:
    """Load VM DOMAIN's XML, apply ``change`` to it, hot-plug the device ``change`` returns
    (method, element) if wanted and possible, then save the XML (restarting if decided)."""
    cli = options()
    client = cli.client()
    vm, root = _load(client, domain)
    with _xml_errors(domain):
        hotplug = change(root)
    live = hotplug is not None and live_flag and vm.get("state") == RUNNING and restart_flag is not True
    restart = decide_restart(cli, domain, vm, restart_flag, confirm_flag, live)
    if live:
        _hotplug(cli, client, domain, *hotplug)
    reply = client.put(vm_path(domain), params={"restart": restart}, data={"xml": serialize(root)})
    emit_reply(cli, reply)
    if not restart and not live and vm.get("state") == RUNNING:
        cli.note(f"The change takes effect when VM {domain} next restarts.")


# vCPUs.


@click.group(name="vcpu")
def vm_vcpu() -> None:
    """Read or change the vCPUs of a VM."""


@vm_vcpu.command(name="get")
@domain_argument
@get_format_option
def vm_vcpu_get(domain: str, output_format: str) -> None:
    """Show the vCPU count and topology of VM DOMAIN (1 socket, VCPUS cores, 1 thread when its
    XML states none)."""
    vm, root = _load(options().client(), domain)
    count, topology = effective_vcpus(root)
    data = {
        "name": vm.get("name", domain),
        "vcpus": count if count is not None else vm.get("vcpu"),
        "sockets": topology.sockets if topology else None,
        "cores": topology.cores if topology else None,
        "threads": topology.threads if topology else None,
    }
    if output_format == "raw":
        options().emit(str(data["vcpus"]))
        return
    emit_data(data, output_format, vcpus_pretty)


@vm_vcpu.command(name="set")
@domain_argument
@click.argument("vcpus")
@click.option(
    "-t",
    "--topology",
    "topology",
    default=None,
    help="CPU topology as SOCKETS,CORES,THREADS (product = VCPUS).",
)
@restart_option
@yes_option
def vm_vcpu_set(
    domain: str, vcpus: str, topology: str | None, restart_flag: bool | None, confirm_flag: bool
) -> None:
    """Set the vCPU count of VM DOMAIN to VCPUS.

    The topology is -t's, else the current one if it still fits, else 1 socket of VCPUS cores
    with 1 thread each."""
    with _xml_errors():
        count = parse_count(vcpus, "VCPUS")
        layout = parse_topology(topology) if topology else None
    _edit(domain, lambda root: set_vcpus(root, count, layout), restart_flag, confirm_flag)


# Memory.


@click.group(name="memory")
def vm_memory() -> None:
    """Read or change the memory of a VM."""


@vm_memory.command(name="get")
@domain_argument
@get_format_option
def vm_memory_get(domain: str, output_format: str) -> None:
    """Show the memory size (MiB) of VM DOMAIN."""
    vm, root = _load(options().client(), domain)
    memory = read_memory(root)
    data = {"name": vm.get("name", domain), "memory": memory if memory is not None else vm.get("memory")}
    if output_format == "raw":
        options().emit(str(data["memory"]))
        return
    emit_data(data, output_format, memory_pretty)


@vm_memory.command(name="set")
@domain_argument
@click.argument("memory")
@restart_option
@yes_option
def vm_memory_set(domain: str, memory: str, restart_flag: bool | None, confirm_flag: bool) -> None:
    """Set the memory of VM DOMAIN to MEMORY (MiB, or with a unit: 512M, 4G)."""
    with _xml_errors():
        mib = parse_memory(memory)
    _edit(domain, lambda root: set_memory(root, mib), restart_flag, confirm_flag)


# Network interfaces.


@click.group(name="network")
def vm_network() -> None:
    """Read or change the network interfaces of a VM."""


@vm_network.command(name="get")
@domain_argument
@get_format_option
def vm_network_get(domain: str, output_format: str) -> None:
    """Show the network interfaces of VM DOMAIN."""
    nics = fetch_vm(options().client(), domain).get("networks") or []
    if output_format == "raw":
        emit_lines(network_id(nic) for nic in nics if isinstance(nic, dict))
        return
    emit_data(nics, output_format, networks_pretty)


@vm_network.command(name="add")
@domain_argument
@click.argument("net")
@click.option(
    "-a", "--macaddr", "macaddr", default=None, help="MAC address [default: a random 52:54:00:...]."
)
@click.option(
    "-m", "--model", "model", default=DEFAULT_NIC_MODEL, show_default=True, help="Virtual NIC model."
)
@click.option(
    "-s", "--sriov", "sriov_flag", is_flag=True, default=False, help="NET is an SR-IOV VF of the VM's node."
)
@click.option(
    "-d",
    "--sriov-mode",
    "sriov_mode",
    type=click.Choice(SRIOV_MODES),
    default="macvtap",
    show_default=True,
    help="macvtap (can move live) or hostdev (a PCI device; moves only by shutdown).",
)
@live_option
@restart_option
@yes_option
def vm_network_add(
    domain: str,
    net: str,
    macaddr: str | None,
    model: str,
    sriov_flag: bool,
    sriov_mode: str,
    live_flag: bool,
    restart_flag: bool | None,
    confirm_flag: bool,
) -> None:
    """Add an interface on network NET (a VNI) to VM DOMAIN; with -s/--sriov, on SR-IOV VF NET
    (ens1f0v3) of the VM's node."""
    with _xml_errors():
        mac = normalize_mac(macaddr) if macaddr else random_mac()
        if sriov_flag:
            device = net if sriov_mode == "macvtap" else _vf_pci(domain, net, required=True)
            interface = sriov_interface_element(sriov_mode, device, mac, model)
        else:
            interface = interface_element(bridge_name(parse_vni(net)), mac, model)

    def change(root: Element) -> tuple[str, Element]:
        add_interface(root, interface)
        return "POST", interface

    _edit(domain, change, restart_flag, confirm_flag, live_flag)


@vm_network.command(name="remove")
@domain_argument
@click.argument("net", required=False, default=None)
@click.option("-m", "--mac-address", "macaddr", default=None, help="MAC address of the interface to remove.")
@click.option("-s", "--sriov", "sriov_flag", is_flag=True, default=False, help="NET is an SR-IOV VF.")
@live_option
@restart_option
@yes_option
def vm_network_remove(
    domain: str,
    net: str | None,
    macaddr: str | None,
    sriov_flag: bool,
    live_flag: bool,
    restart_flag: bool | None,
    confirm_flag: bool,
) -> None:
    """Remove the interface of VM DOMAIN on network NET (a VNI) and/or with MAC address -m; with
    -s/--sriov, the interface on SR-IOV VF NET (macvtap or hostdev)."""
    if net is None and macaddr is None:
        raise click.UsageError("Give NET, -m/--mac-address or both.")
    if sriov_flag:
        if net is None:
            raise click.UsageError("Give the VF as NET with -s/--sriov.")
        with _xml_errors():
            mac = normalize_mac(macaddr) if macaddr else None
        pci = _vf_pci(domain, net, required=False)
        _edit(
            domain,
            lambda root: ("DELETE", remove_sriov_interface(root, net, pci, mac)),
            restart_flag,
            confirm_flag,
            live_flag,
        )
        return
    with _xml_errors():
        bridge = bridge_name(parse_vni(net)) if net is not None else None
        mac = normalize_mac(macaddr) if macaddr else None
    _edit(
        domain,
        lambda root: ("DELETE", remove_interface(root, bridge, mac)),
        restart_flag,
        confirm_flag,
        live_flag,
    )


# Disks.


@click.group(name="volume")
def vm_volume() -> None:
    """Read or change the disks of a VM."""


@vm_volume.command(name="get")
@domain_argument
@get_format_option
def vm_volume_get(domain: str, output_format: str) -> None:
    """Show the disks of VM DOMAIN."""
    disks = fetch_vm(options().client(), domain).get("disks") or []
    if output_format == "raw":
        emit_lines(disk.get("name") for disk in disks if isinstance(disk, dict))
        return
    emit_data(disks, output_format, volumes_pretty)


@vm_volume.command(name="add")
@domain_argument
@click.argument("volume")
@click.option(
    "-d",
    "--disk-id",
    "disk_id",
    default=None,
    help="Target device (sdb, vdc...) [default: the next free one].",
)
@click.option(
    "-b", "--bus", "bus", type=click.Choice(DISK_BUSES), default="scsi", show_default=True, help="Disk bus."
)
@click.option(
    "-t",
    "--type",
    "disk_type",
    type=click.Choice(DISK_TYPES),
    default="rbd",
    show_default=True,
    help="rbd: VOLUME is POOL/NAME; file: VOLUME is an absolute path.",
)
@live_option
@restart_option
@yes_option
def vm_volume_add(
    domain: str,
    volume: str,
    disk_id: str | None,
    bus: str,
    disk_type: str,
    live_flag: bool,
    restart_flag: bool | None,
    confirm_flag: bool,
) -> None:
    """Attach VOLUME (POOL/NAME of an RBD volume, or a file path with -t file) to VM DOMAIN."""

    def change(root: Element) -> tuple[str, Element]:
        disk = disk_element(volume, disk_id or next_target(root, bus), bus, disk_type)
        add_disk(root, disk)
        return "POST", disk

    _edit(domain, change, restart_flag, confirm_flag, live_flag)


@vm_volume.command(name="remove")
@domain_argument
@click.argument("volume")
@live_option
@restart_option
@yes_option
def vm_volume_remove(
    domain: str, volume: str, live_flag: bool, restart_flag: bool | None, confirm_flag: bool
) -> None:
    """Detach VOLUME (POOL/NAME, or a file path) from VM DOMAIN; the volume itself is kept."""
    _edit(domain, lambda root: ("DELETE", remove_disk(root, volume)), restart_flag, confirm_flag, live_flag)
