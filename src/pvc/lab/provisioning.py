"""Provisioner profiles for the lab: VMs cloned copy-on-write from a base volume, or copied
from an uploaded OVA, booting the lab's guest kernel, on a managed network, fetching their
user-data at boot.

Used by the lab's tests and benchmarks: :func:`prepare_clone_profile` makes everything
through the API (network, base volume and snapshot, templates, userdata, the shipped
``clone`` script, the profile), :func:`prepare_ova_profile` uploads an appliance made here
and points its profile at the same network, userdata and kernel; :func:`create` runs
``provisioner.create`` and waits.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvc.client.http import ApiClient
from pvc.cluster.provisioner.scripts import shipped
from pvc.lab import cluster_ceph, demo, endpoint
from pvc.lab.appliance import appliance_ova
from pvc.lab.cache import cache_dir
from pvc.lab.guest import GuestNetwork, ensure_image

#: The lab profile's user-data (its placeholders filled in for each VM).
USERDATA = "#cloud-config\nhostname: {vm_name}\nfqdn: {vm_name}.{domain}\n"
PROFILE = "lab-clone"
#: The first line of the lab appliance's disk (a guest prints it as ``LAB-DISK vda <label>``).
OVA_LABEL = "PVC-LAB-OVA"
BASE_VOLUME, BASE_SNAPSHOT = "lab-base", "golden"


@dataclass(frozen=True)
class LabNetwork:
    """The managed network the profile's VMs join (``/24`` with DHCP)."""

    vni: int
    domain: str
    prefix: str  # "10.180.0"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"

    def api_data(self) -> dict[str, str]:
        return {
            "vni": str(self.vni),
            "description": "provisioned",
            "nettype": "managed",
            "domain": self.domain,
            "ip4_network": f"{self.prefix}.0/24",
            "ip4_gateway": self.gateway,
            "dhcp4": "true",
            "dhcp4_start": f"{self.prefix}.100",
            "dhcp4_end": f"{self.prefix}.199",
        }


def _boot_arguments() -> list[str]:
    """The clone and ova scripts' arguments that boot the lab's guest kernel (the guest's
    own name comes from the metadata service, not its command line)."""
    image = ensure_image(cache_dir())
    cmdline = image.cmdline(heartbeat_disk="vda", network=GuestNetwork("lab", metadata=True))
    return [f"kernel={image.kernel}", f"initrd={image.initrd}", f"cmdline={cmdline}"]


def prepare_clone_profile(api: ApiClient, network: LabNetwork) -> None:
    """Make the network, the base volume with its snapshot and the profile ``lab-clone``."""
    endpoint.accepted(api.post("/network", data=network.api_data()), "add network")
    pool = cluster_ceph.POOL
    base = {"pool": pool, "volume": BASE_VOLUME}
    endpoint.accepted(api.post("/storage/ceph/volume", data={**base, "size": "64M"}), "base volume")
    endpoint.accepted(
        api.post("/storage/ceph/snapshot", data={**base, "snapshot": BASE_SNAPSHOT}), "snapshot"
    )
    system = {"name": "lab-tiny", "vcpus": 1, "vram": demo.GUEST_MEMORY_MIB, "serial": "true", "vnc": "false"}
    disk = {"disk_id": "sda", "pool": pool, "source_volume": f"{BASE_VOLUME}@{BASE_SNAPSHOT}", "disk_size": 1}
    profile = {
        "name": PROFILE,
        "system_template": "lab-tiny",
        "network_template": "lab-net",
        "storage_template": "lab-cloned",
        "userdata": "lab-hello",
        "script": "clone",
        "arg": _boot_arguments(),
    }
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/provisioner/template/system", system),
        ("/provisioner/template/network", {"name": "lab-net", "mac_template": "{prefix}:42:{vmid}:{netid}"}),
        ("/provisioner/template/network/lab-net/net", {"vni": network.vni}),
        ("/provisioner/template/storage", {"name": "lab-cloned"}),
        ("/provisioner/template/storage/lab-cloned/disk", disk),
        (
            "/provisioner/userdata",
            {"name": "lab-hello", "data": USERDATA.replace("{domain}", network.domain)},
        ),
        ("/provisioner/script", {"name": "clone", "data": shipped("clone")}),
        ("/provisioner/profile", profile),
    ]
    for path, data in steps:
        endpoint.accepted(api.post(path, data=data), f"POST {path}")


def prepare_ova_profile(api: ApiClient, name: str = "lab-appliance") -> str:
    """Upload an appliance OVA (one disk labelled ``OVA_LABEL``) as ``name`` into the lab's
    pool, and give its profile the clone profile's network, userdata and boot arguments
    (call :func:`prepare_clone_profile` first). Returns the profile's name."""
    with tempfile.TemporaryDirectory() as tmp:
        path = appliance_ova(Path(tmp), name, OVA_LABEL, memory_mib=demo.GUEST_MEMORY_MIB)
        params = {"pool": cluster_ceph.POOL, "ova_size": path.stat().st_size}
        endpoint.accepted(api.upload(f"/provisioner/ova/{name}", path, params), f"upload OVA {name}")
    settings = {"network_template": "lab-net", "userdata": "lab-hello", "arg": _boot_arguments()}
    endpoint.accepted(api.put(f"/provisioner/profile/{name}", data=settings), f"profile {name}")
    return name


def create(api: ApiClient, name: str, profile: str = PROFILE, timeout: float = 120.0) -> tuple[dict, float]:
    """Create VM ``name`` from ``profile`` and wait for the task; (its final status, seconds
    from the API call until it finished)."""
    began = time.monotonic()
    task = endpoint.accepted(
        api.post("/provisioner/create", data={"name": name, "profile": profile}), "create"
    )
    deadline = began + timeout
    while time.monotonic() < deadline:
        status = api.get(f"/tasks/{task['task_id']}").data
        if status["state"] in ("SUCCESS", "FAILURE"):
            return status, time.monotonic() - began
        time.sleep(0.05)
    raise TimeoutError(f"provisioner.create of {name} did not finish within {timeout:g} s")
