"""VM endpoints of the fake PVC API, for the ``pvc vm`` tests, served beside the base endpoints.

:class:`FakeVmApi` adds VMs (kept as domain XML plus PVC metadata) to :class:`FakeApi`; the VM objects
it answers with are derived from the XML on every GET, in the shape of the API's ``vm`` definition, so
the edits the CLI sends show up in later reads.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request
from lxml import etree

from tests.cli.fakeapi import FakeApi, build_app

STATES = ("start", "shutdown", "stop", "restart", "disable")
ACTIONS = ("migrate", "unmigrate", "move")


def domain_xml(
    name: str,
    uuid: str,
    vcpus: int = 2,
    memory: int = 2048,
    nics: tuple[tuple[str, str], ...] = (),
    disks: tuple[tuple[str, str, str], ...] = (),
    topology: str = "",
) -> str:
    """Domain XML of a test VM: NICs are (bridge, mac), disks (pool/volume, target, bus)."""
    devices = ["    <emulator>/usr/bin/qemu-system-x86_64</emulator>"]
    for volume, dev, bus in disks:
        devices += [
            "    <disk type='network' device='disk'>",
            "      <driver name='qemu' type='raw' cache='none'/>",
            f"      <source protocol='rbd' name='{volume}'/>",
            f"      <target dev='{dev}' bus='{bus}'/>",
            "    </disk>",
        ]
    for bridge, mac in nics:
        devices += [
            "    <interface type='bridge'>",
            f"      <mac address='{mac}'/>",
            f"      <source bridge='{bridge}'/>",
            "      <model type='virtio'/>",
            "    </interface>",
        ]
    devices.append("    <graphics type='vnc' port='5901' listen='127.0.0.1'/>")
    cpu = f"  <cpu><topology {topology}/></cpu>\n" if topology else ""
    return (
        "<domain type='kvm'>\n"
        f"  <name>{name}</name>\n"
        f"  <uuid>{uuid}</uuid>\n"
        "  <description>A test VM</description>\n"
        f"  <memory unit='MiB'>{memory}</memory>\n"
        f"  <currentMemory unit='MiB'>{memory}</currentMemory>\n"
        f"  <vcpu>{vcpus}</vcpu>\n"
        f"{cpu}"
        "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
        "  <devices>\n" + "\n".join(devices) + "\n  </devices>\n</domain>\n"
    )


def _vm(name: str, uuid: str, node: str, state: str, xml: str, **extra: Any) -> dict[str, Any]:
    record = {
        "name": name,
        "uuid": uuid,
        "state": state,
        "node": node,
        "last_node": "",
        "migrated": "no",
        "failed_reason": "",
        "node_limit": [],
        "node_selector": "none",
        "node_autostart": False,
        "migration_method": "none",
        "migration_max_downtime": 300,
        "tags": [],
        "snapshots": [],
        "profile": "",
        "xml": xml,
    }
    record.update(extra)
    return record


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


def _counters(running: bool, **values: int) -> dict[str, Any]:
    """Device counters: the values while the VM runs, N/A (still listed, as in v1) when it does not."""
    return values if running else dict.fromkeys(values, "N/A")


def describe(record: dict[str, Any]) -> dict[str, Any]:
    """A stored VM as ``GET /vm`` shows it: metadata plus what its XML says, and some statistics."""
    root = etree.fromstring(record["xml"].encode())
    topology = root.find("cpu/topology")
    running = record["state"] == "start"
    nics = []
    for nic in root.iter("interface"):
        bridge = nic.find("source").get("bridge", "") if nic.find("source") is not None else ""
        nics.append(
            {
                "type": nic.get("type"),
                "mac": nic.find("mac").get("address"),
                "source": bridge,
                "vni": int(bridge[4:]) if bridge[4:].isdigit() else None,
                "model": nic.find("model").get("type") if nic.find("model") is not None else "",
                **_counters(
                    running,
                    rd_bytes=1000,
                    rd_packets=10,
                    rd_errors=0,
                    rd_drops=0,
                    wr_bytes=2000,
                    wr_packets=20,
                    wr_errors=0,
                    wr_drops=0,
                ),
            }
        )
    disks = []
    for disk in root.iter("disk"):
        source, target = disk.find("source"), disk.find("target")
        disks.append(
            {
                "type": source.get("protocol") or disk.get("type"),
                "name": source.get("name") or source.get("file"),
                "dev": target.get("dev"),
                "bus": target.get("bus"),
                **_counters(running, rd_req=5, rd_bytes=4096, wr_req=6, wr_bytes=8192),
            }
        )
    vm = copy.deepcopy(record)
    vm.update(
        {
            "description": root.findtext("description") or "",
            "memory": int(root.findtext("memory")),
            # As the API serves them: a running VM's figures libvirt did not report are N/A;
            # a VM that is not running has none.
            "memory_stats": dict.fromkeys(MEMORY_STATS, "N/A") | {"actual": 2097152, "rss": 1048576}
            if running
            else {},
            "vcpu": int(root.findtext("vcpu")),
            "vcpu_topology": (
                "/".join(topology.get(k) for k in ("sockets", "cores", "threads"))
                if topology is not None
                else "N/A"
            ),
            "vcpu_stats": {"cpu_time": 123, "user_time": 100, "system_time": 23} if running else {},
            "type": root.get("type"),
            "arch": "x86_64",
            "machine": "pc",
            "console": "",
            "vnc": {"listen": "127.0.0.1", "port": "5901"},
            "emulator": root.findtext("devices/emulator"),
            "features": ["acpi"],
            "networks": nics,
            "disks": disks,
            "controllers": [{"type": "scsi", "model": "virtio-scsi"}],
        }
    )
    return vm


@dataclass
class FakeVmApi(FakeApi):
    """The fake API with VMs; ``device_task`` scripts the task a device attach/detach starts."""

    vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    console_lines: list[str] = field(default_factory=list)
    # Batches of lines appended to the console log, one batch per console request after the first.
    console_batches: list[list[str]] = field(default_factory=list)
    device_task: list[dict[str, Any]] = field(
        default_factory=lambda: [{"state": "SUCCESS", "current": 1, "total": 1, "status": "Device done"}]
    )
    task_counter: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.vms:
            uuid1, uuid2 = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
            xml1 = domain_xml(
                "vm1",
                uuid1,
                nics=(("vmbr100", "52:54:00:00:00:01"),),
                disks=(("vms/vm1_disk0", "sda", "scsi"),),
            )
            xml2 = domain_xml(
                "vm2",
                uuid2,
                vcpus=4,
                memory=4096,
                nics=(("vmbr100", "52:54:00:00:00:02"), ("vmbr200", "52:54:00:00:00:03")),
                disks=(("vms/vm2_disk0", "vda", "virtio"),),
                topology="sockets='1' cores='2' threads='2'",
            )
            self.vms = {
                "vm1": _vm("vm1", uuid1, "hv1", "start", xml1, tags=[_tag("web")]),
                "vm2": _vm(
                    "vm2",
                    uuid2,
                    "hv2",
                    "stop",
                    xml2,
                    last_node="hv1",
                    migrated="from hv1",
                    node_limit=["hv1", "hv2"],
                    tags=[_tag("prod", protected=True)],
                ),
            }
        if not self.console_lines:
            self.console_lines = [f"console {i}" for i in range(1, 21)]

    def vm_states(self) -> list[str]:
        """The states of the VMs this fake serves (``GET /status`` counts them)."""
        return [record["state"] for record in self.vms.values()]

    def new_task(self, steps: list[dict[str, Any]], name: str, node: str) -> dict[str, Any]:
        """Register a scripted task; returns the 202 body that announces it."""
        self.task_counter += 1
        task_id = f"cafe{self.task_counter:04d}"
        self.tasks[task_id] = copy.deepcopy(steps)
        return {"task_id": task_id, "task_name": name, "run_on": node}


def _tag(name: str, protected: bool = False) -> dict[str, Any]:
    return {"name": name, "type": "user", "protected": protected}


def _true(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes", "y", "on")


def build_vm_app(api: FakeVmApi) -> Flask:
    """The fake API's Flask application with the VM endpoints added."""
    app = build_app(api)

    def error(message: Any, status: int) -> Any:
        return jsonify({"message": message}), status

    def find(name: str) -> dict[str, Any] | None:
        return api.vms.get(name)

    @app.get("/api/v1/vm")
    def vm_list() -> Any:
        args = request.args
        negate = _true(args.get("negate"))
        result = []
        for name, record in sorted(api.vms.items()):
            if args.get("limit") and not re.search(args["limit"], name):
                continue
            checks = [
                record["node"] == args["node"] if args.get("node") else None,
                record["state"] == args["state"] if args.get("state") else None,
                any(t["name"] == args["tag"] for t in record["tags"]) if args.get("tag") else None,
            ]
            matched = all(check for check in checks if check is not None)
            if any(check is not None for check in checks) and matched == negate:
                continue
            result.append(describe(record))
        return jsonify(result)

    @app.post("/api/v1/vm")
    def vm_define() -> Any:
        xml = request.form.get("xml")
        if not xml:
            return error({"xml": "A Libvirt XML document must be specified"}, 400)
        name = etree.fromstring(xml.encode()).findtext("name")
        if name in api.vms:
            return error(f"VM {name} already exists", 400)
        api.vms[name] = _vm(
            name, "abcdef00-0000-0000-0000-000000000000", request.args.get("node") or "hv1", "start", xml
        )
        return jsonify({"message": f"Added new VM with Name {name}"})

    @app.get("/api/v1/vm/<name>")
    def vm_get(name: str) -> Any:
        record = find(name)
        if record is None:
            return error("VM not found", 404)
        return jsonify([describe(record)])

    @app.put("/api/v1/vm/<name>")
    def vm_modify(name: str) -> Any:
        record = find(name)
        if record is None:
            return error(f"VM {name} not found", 404)
        xml = request.form.get("xml")
        if not xml:
            return error({"xml": "A Libvirt XML document must be specified"}, 400)
        record["xml"] = xml
        restart = " and restarted" if _true(request.args.get("restart")) else ""
        return jsonify({"message": f"Modified VM {name}{restart}"})

    @app.delete("/api/v1/vm/<name>")
    def vm_delete(name: str) -> Any:
        if find(name) is None:
            return error(f"VM {name} not found", 400)
        del api.vms[name]
        what = "Removed" if _true(request.args.get("delete_disks")) else "Undefined"
        return jsonify({"message": f"{what} VM {name}"})

    @app.post("/api/v1/vm/<name>/meta")
    def vm_meta(name: str) -> Any:
        record = find(name)
        if record is None:
            return error(f"VM {name} not found", 404)
        if "limit" in request.args:
            record["node_limit"] = request.args["limit"].split(",")
        if "autostart" in request.args:
            record["node_autostart"] = _true(request.args["autostart"])
        for key, target in (("selector", "node_selector"), ("migration_method", "migration_method")):
            if key in request.args:
                record[target] = request.args[key]
        return jsonify({"message": f"Successfully modified PVC metadata of VM {name}"})

    @app.get("/api/v1/vm/<name>/tags")
    def vm_tags(name: str) -> Any:
        record = find(name)
        if record is None:
            return error(f"VM {name} not found", 404)
        return jsonify({"name": name, "tags": record["tags"]})

    @app.post("/api/v1/vm/<name>/tags")
    def vm_tag_change(name: str) -> Any:
        record = find(name)
        if record is None:
            return error(f"VM {name} not found", 404)
        action, tag = request.args.get("action"), request.args.get("tag")
        if action == "add":
            record["tags"].append(_tag(tag or "", _true(request.args.get("protected"))))
            return jsonify({"message": f"Added tag {tag} to VM {name}"})
        record["tags"] = [t for t in record["tags"] if t["name"] != tag]
        return jsonify({"message": f"Removed tag {tag} from VM {name}"})

    @app.post("/api/v1/vm/<name>/state")
    def vm_state(name: str) -> Any:
        state = request.args.get("state")
        if state not in STATES:
            return error({"state": "A valid state must be specified"}, 400)
        record = find(name)
        if record is None:
            return error(f"VM {name} not found", 400)
        record["state"] = state
        message = f'Set VM "{name}" state to "{state}"'
        if request.args.get("wait") == "true" and name == "vm2":  # the server's wait ran out
            return jsonify({"message": f"{message}; not finished after 30 s; it goes on"}), 202
        return jsonify({"message": message})

    @app.post("/api/v1/vm/<name>/node")
    def vm_node(name: str) -> Any:
        action = request.args.get("action")
        if action not in ACTIONS:
            return error({"action": "A valid action must be specified"}, 400)
        record = find(name)
        if record is None:
            return error(f"VM {name} not found", 400)
        if action == "unmigrate" and not record["last_node"]:
            return error(f'ERROR: VM "{name}" has not been previously migrated.', 400)
        target = request.args.get("node") or "hv2"
        return jsonify({"message": f'{action.title()} VM "{name}" to node "{target}".'})

    @app.post("/api/v1/vm/<name>/rename")
    def vm_rename(name: str) -> Any:
        record = find(name)
        if record is None:
            return error(f"VM {name} not found", 400)
        new_name = request.args.get("new_name", "")
        api.vms[new_name] = api.vms.pop(name)
        record["name"] = new_name
        return jsonify({"message": f"Renamed VM {name} to {new_name}"})

    @app.post("/api/v1/vm/<name>/locks")
    def vm_locks(name: str) -> Any:
        if find(name) is None:
            return error(f"VM {name} not found", 400)
        return jsonify(
            api.new_task([{"state": "SUCCESS", "status": "Flushed locks"}], "vm.flush_locks", "hv1")
        ), 202

    @app.route("/api/v1/vm/<name>/device", methods=["POST", "DELETE"])
    def vm_device(name: str) -> Any:
        if find(name) is None:
            return error(f"VM {name} not found", 400)
        if not request.form.get("xml"):
            return error({"xml": "A Libvirt XML device document must be specified"}, 400)
        task = "vm.device_attach" if request.method == "POST" else "vm.device_detach"
        return jsonify(api.new_task(api.device_task, task, "hv1")), 202

    @app.get("/api/v1/vm/<name>/console")
    def vm_console(name: str) -> Any:
        if find(name) is None:
            return error(f"VM {name} not found", 404)
        if len(api.calls("GET", f"/vm/{name}/console")) > 1 and api.console_batches:
            api.console_lines.extend(api.console_batches.pop(0))
        lines = int(request.args.get("lines", 1000))
        return jsonify({"name": name, "data": "\n".join(api.console_lines[-lines:]) if lines else ""})

    return app
