"""The pvc.conf of each lab node."""

from __future__ import annotations

import yaml

from pvc.config import parse_config
from pvc.lab import cluster_ceph, endpoint, libvirtd, power
from pvc.lab.bmc import ADMIN_USER
from pvc.lab.cache import cache_dir
from pvc.lab.layout import LabLayout


def node_config_data(layout: LabLayout, node: str) -> dict:
    """The configuration mapping of one lab node (validated by the same schema).

    Its API requires the lab's admin key and runs as the default unprivileged account,
    like a production node's; TLS stays off (the lab's bridge is local to this machine).
    Once ``up`` has made the BMCs' password, it names the node's simulated BMC for fencing.
    """
    addresses = layout.addresses(node)
    networks = {
        name: {
            "device": layout.node_link(node),
            "address": str(address),
            "floating_address": str(layout.floating(name)),
        }
        for name, address in addresses.items()
    }
    # Bridged networks' VLANs ride the node's one link; BGP timers short enough that a lab
    # node's routes go within seconds of its death.
    networks["bridge_device"] = layout.node_link(node)
    networks["bgp"] = {"keepalive": 1, "hold": 3, "connect": 1}
    node_dir = layout.node_dir(node)
    data = {
        "cluster": {"name": layout.cluster_name},
        "node": {"name": node},
        "coordinators": layout.coordinator_names,
        "zookeeper": {
            "hosts": layout.zookeeper_hosts,
            "session_timeout": layout.session_timeout,
            "auth": "digest",
            "auth_file": str(layout.zookeeper_auth_file),
        },
        "networks": networks,
        "hypervisor": {  # the node's own libvirtd (its /run is private); peers reach it over TLS
            "uri": "qemu:///system",
            "peer_uri": libvirtd.peer_uri(layout, node),
            "migration_address": layout.cluster_ip(node),
            "shutdown_timeout": layout.shutdown_timeout,
            # The guests' consoles go where the lab's tools read them, the same for all nodes.
            "console_log_dir": str(layout.directory / "serial"),
            # The guests' kernel and initramfs (the lab's cache) and their file disks.
            "image_dirs": [str(cache_dir()), str(layout.directory / "disks")],
        },
        "timers": {
            "keepalive_interval": layout.keepalive_interval,
            "fence_intervals": layout.fence_intervals,
        },
        "paths": {"state_dir": str(node_dir / "state"), "log_dir": str(node_dir / "log")},
        "logging": {"level": "info", "zookeeper_lines": 2000},
        "api": {
            "listen": {"port": layout.api_port},  # the upstream floating address
            "ssl": {"enabled": False},
            "token": [{"description": "pvc-lab admin", "token": endpoint.api_key(layout) or ""}],
        },
    }
    data["database"] = (
        {"auth_file": str(layout.database_auth_file)} if layout.database else {"enabled": False}
    )
    # /dev/kvm cannot run the lab's guests: the provisioner defines emulated (TCG) VMs
    data["provisioner"] = {"domain_type": "qemu"}
    # Lab nodes share one machine: none may arm a hardware watchdog that would reset it.
    data["fencing"] = {"watchdog": None}
    password = power.bmc_password(layout)
    if password:  # the node's BMC, which its peers reach over the bridge to fence it
        data["fencing"]["ipmi"] = {
            "host": layout.bmc_address,
            "port": layout.bmc_port(node),
            "user": ADMIN_USER,
            "password": password,
        }
    # Lab guests run under TCG on a small shared machine: a flush with wait=true can take minutes.
    data["api"]["limits"] = {"wait_timeout": 600}
    if layout.ceph:
        data["storage"] = {
            "ceph_conf": str(cluster_ceph.conf_path(layout)),
            **cluster_ceph.storage_keys(layout),
            "stats_interval": 2.0,
        }
    if layout.peers:  # snapshots and mirrors may go to the peer labs' APIs
        data["backup"] = {"send_destinations": layout.peer_apis}
    parse_config(data, f"lab config of {node}")  # never write a config the daemon rejects
    return data


def write_node_config(layout: LabLayout, node: str) -> None:
    path = layout.config_file(node)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(node_config_data(layout, node), sort_keys=False))
