"""What a VM is made from: a profile resolved, at submission, into one JSON-able plan.

The API reads the profile and everything it names from the database and hands the result
to the ``provisioner.create`` task as its arguments, so the task never needs the database
and a failover of it cannot disturb a creation already under way. The plan's ``vm_data``
is also what install scripts' hooks get (see ``docs/provisioner.md``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner import validation as check
from pvc.cluster.provisioner.profiles import ARGUMENT
from pvc.cluster.provisioner.scripts import shipped
from pvc.cluster.provisioner.templates import system_view
from pvc.db.models import NetworkTemplate, Ova, Profile, Script, StorageTemplate, SystemTemplate, Userdata
from pvc.domain_xml.bridges import bridge_name
from pvc.domain_xml.parse import NAME

#: The MAC prefix of VMs' NICs (QEMU's; locally administered would also do).
MAC_PREFIX = "52:54:00"
_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")
#: The name of a VM's volume for its disk ``disk_id``.
VOLUME_NAME = "{vm}_{disk_id}"


def check_vm_name(name: str) -> str:
    """A new VM's name, or ClusterError (400)."""
    if not NAME.fullmatch(name or ""):
        raise ClusterError(
            f"VM name '{(name or '')[:70]}' is not valid: letters, digits, '_', '.' and '-', "
            "up to 63, starting with a letter or digit"
        )
    return name


def arguments(profile_arguments: Sequence[str], given: Sequence[str]) -> dict[str, str]:
    """The script's arguments: the profile's ``key=value`` list, overridden by ``given``."""
    merged: dict[str, str] = {}
    for value in [*profile_arguments, *given]:
        if value == "":
            continue
        if not ARGUMENT.fullmatch(value):
            raise ClusterError(f"script argument '{value[:80]}' is not key=value (key: letters, digits, '_')")
        key, _, text = value.partition("=")
        merged[key] = text
    return merged


def _vm_id(vm: str) -> int:
    """The number a VM's name ends with (``web12`` → 12), else one derived from the name."""
    digits = re.search(r"(\d+)$", vm)
    if digits:
        return int(digits.group(1)) % 256
    return hashlib.sha256(vm.encode()).digest()[0]


def mac_addresses(template: str | None, vm: str, count: int) -> list[str]:
    """One MAC address per NIC: from the network template's ``mac_template`` (``{prefix}``,
    ``{vmid}``, ``{netid}``: the NIC's position), or stable ones derived from the VM's name."""
    macs = []
    for index in range(count):
        if template:
            mac = template.format(prefix=MAC_PREFIX, vmid=f"{_vm_id(vm):02x}", netid=f"{index:02x}").lower()
        else:
            digest = hashlib.sha256(f"{vm}/{index}".encode()).hexdigest()
            mac = f"{MAC_PREFIX}:{digest[0:2]}:{digest[2:4]}:{digest[4:6]}"
        if not _MAC.fullmatch(mac) or int(mac[:2], 16) & 1:
            raise ClusterError(f"MAC template '{template}' gives '{mac}' for {vm}, not a unicast MAC address")
        macs.append(mac)
    if len(set(macs)) != len(macs):
        raise ClusterError(f"MAC template '{template}' gives the same address to two NICs of {vm}")
    return macs


def _system(row: SystemTemplate) -> dict[str, Any]:
    """The system template as the plan carries it: its view, with the node limit as a list
    and the choices left open spelled ``none``."""
    view = system_view(row)
    del view["id"]
    view["node_limit"] = row.node_limit.split(",") if row.node_limit else []
    view["node_selector"] = row.node_selector or "none"
    view["migration_method"] = row.migration_method or "none"
    return view


def _volume(
    vm: str, disk_id: str, pool: str, source: str | None, size_gb: int | None, **filesystem: Any
) -> dict:
    """A disk of the new VM as the plan carries it (``filesystem``: its filesystem settings)."""
    return {
        "disk_id": disk_id,
        "pool": pool,
        "volume": VOLUME_NAME.format(vm=vm, disk_id=disk_id),
        "source_volume": source,
        "size_gb": size_gb,
        "filesystem": filesystem.get("filesystem"),
        "filesystem_args": list(filesystem.get("filesystem_args") or []),
        "mountpoint": filesystem.get("mountpoint"),
    }


def _volumes(vm: str, row: StorageTemplate | None) -> list[dict[str, Any]]:
    if row is None:
        return []
    return [
        _volume(
            vm,
            disk.disk_id,
            disk.pool,
            disk.source_volume,
            disk.disk_size_gb,
            filesystem=disk.filesystem,
            filesystem_args=disk.filesystem_args,
            mountpoint=disk.mountpoint,
        )
        for disk in row.disks
    ]


def _ova_volumes(vm: str, ova: Ova) -> list[dict[str, Any]]:
    return [_volume(vm, v.disk_id, v.pool, v.volume_name, v.disk_size_gb) for v in ova.volumes]


def resolve(
    session: Session, vm: str, profile_name: str, given_arguments: Sequence[str] = ()
) -> dict[str, Any]:
    """The plan for VM ``vm`` from profile ``profile_name`` (NotFoundError, ClusterError)."""
    check_vm_name(vm)
    profile = check.by_name(session, Profile, profile_name, "Profile")
    system = session.get(SystemTemplate, profile.system_template)
    network = session.get(NetworkTemplate, profile.network_template) if profile.network_template else None
    userdata = session.get(Userdata, profile.userdata) if profile.userdata else None
    row = session.get(Script, profile.script) if profile.script else None
    if profile.profile_type == "ova":
        # an OVA profile's disks are copies of the OVA's volumes; its script is optional
        ova = session.get(Ova, profile.ova) if profile.ova else None
        if ova is None:
            raise ClusterError(f"Profile '{profile_name}' names no OVA")
        volumes = _ova_volumes(vm, ova)
        script = (row.name, row.script) if row else ("ova", shipped("ova"))
    else:
        storage = session.get(StorageTemplate, profile.storage_template) if profile.storage_template else None
        volumes = _volumes(vm, storage)
        script = (row.name, row.script) if row else ("", "")
    if system is None or not script[0]:
        raise ClusterError(f"Profile '{profile_name}' lacks its system template or script")
    vnis = [net.vni for net in network.networks] if network else []
    macs = mac_addresses(network.mac_template if network else None, vm, len(vnis))
    vm_data = {
        "name": vm,
        "profile": profile.name,
        "arguments": arguments(profile.arguments or [], given_arguments),
        "system": _system(system),
        "networks": [
            {"vni": vni, "mac": mac, "bridge": bridge_name(vni)} for vni, mac in zip(vnis, macs, strict=True)
        ],
        "volumes": volumes,
        "userdata": userdata.name if userdata else None,
        "script": script[0],
    }
    return {"vm_data": vm_data, "script_text": script[1]}
