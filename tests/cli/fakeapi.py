"""A small in-process PVC API (Flask, served by werkzeug on 127.0.0.1) for the CLI tests.

It implements only the endpoints the CLI tests use, answers in the shapes of the PVC v1 API, keeps
in-memory state that the calls change, and records every request it receives.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

API_KEY = "5e0a4b21-aaaa-bbbb-cccc-0123456789ab"


@dataclass
class Recorded:
    """One request the fake API received."""

    method: str
    path: str
    args: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]


def _node(name: str, coordinator: str, running: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "name": name,
        "daemon_state": "run",
        "coordinator_state": coordinator,
        "domain_state": "ready",
        "pvc_version": "0.1.0",
        "cpu_count": 8,
        "kernel": "6.1.0-test",
        "os": "GNU/Linux",
        "arch": "x86_64",
        # As the API serves it while no health plugin measures node health.
        "health": "N/A",
        "health_plugins": [],
        "health_details": [],
        "load": 0.5,
        "domains_count": len(running),
        "running_domains": list(running),
        "vcpu": {"total": 8, "allocated": 4},
        "memory": {"total": 32768, "used": 8192, "free": 24576, "allocated": 4096, "provisioned": 6144},
        "interfaces": {
            "eno1": {
                "state": "up",
                "link_speed": 10000,
                "mtu": 1500,
                "rx_bps": 81920,
                "tx_bps": 40960,
                "rx_pps": 12,
                "tx_pps": 9,
                "total_bps": 122880,
                "total_pps": 21,
            },
            # a link without a speed, sampled once: no rates yet
            "bond0": {"state": "up", "link_speed": "N/A", "mtu": 9000}
            | dict.fromkeys(("rx_bps", "tx_bps", "rx_pps", "tx_pps", "total_bps", "total_pps"), "N/A"),
        },
        "last_keepalive": 1700000000.5,
        "fence": None,
    }


def _task(task_id: str, name: str, node: str, kwargs: dict[str, Any], state: str) -> dict[str, Any]:
    """One entry of ``GET /tasks`` as the server lists it."""
    worker = f"pvcworker@{node}"
    started = 1700000100.0 if state == "RUNNING" else None
    return {
        "id": task_id,
        "name": name,
        "args": [],
        "kwargs": kwargs,
        "run_on": node,
        "worker": worker,
        "hostname": worker,
        "state": state,
        "current": 1 if started else 0,
        "total": 4,
        "status": "Running" if started else "Pending",
        "created": 1700000000.0,
        "time_start": started,
        "started": started,
        "cancel_requested": False,
    }


@dataclass
class FakeApi:
    """State and behaviour of the fake API; tests read ``requests`` and change the fields freely."""

    api_key: str | None = API_KEY
    maintenance: bool = False
    # Polls a node spends in a transitional state before it settles.
    transition_polls: int = 2
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=list)
    # Batches of lines appended to the log, one batch per log request after the first.
    log_batches: list[list[str]] = field(default_factory=list)
    # Statuses to answer the next requests with before serving them normally (for retry tests).
    fail_with: list[int] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    pending: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    backup_data: dict[str, Any] = field(default_factory=lambda: {"/config/primary_node": "hv1"})
    restored: Any = None
    initialized: dict[str, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes = {"hv1": _node("hv1", "primary", ("vm1",)), "hv2": _node("hv2", "secondary")}
        if not self.faults:
            self.faults = [
                {
                    "id": "a1b2c3d4",
                    "first_reported": "2024-01-01 00:00:00",
                    "last_reported": "2024-01-02 00:00:00",
                    "acknowledged_at": "",
                    "status": "new",
                    "health_delta": 50,
                    "message": "Node hv2 is dead: no keepalive for over 30 s",
                },
                {
                    "id": "e5f6a7b8",
                    "first_reported": "2024-01-03 00:00:00",
                    "last_reported": "2024-01-04 00:00:00",
                    "acknowledged_at": "",
                    "status": "new",
                    "health_delta": 25,
                    "message": "Node hv3's daemon is not running (state stop)",
                },
            ]
        if not self.log_lines:
            self.log_lines = [f"line {i}" for i in range(1, 21)]

    # Queries used by the tests.

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Recorded requests, optionally only those with this method and/or path."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    def vm_states(self) -> list[str]:
        """The states of the VMs this fake serves (none here; the VM fake has some)."""
        return []

    def network_count(self) -> int:
        """How many client networks ``GET /status`` counts (none here; the network fake has some)."""
        return 0

    def status(self) -> dict[str, Any]:
        """A ``GET /status`` body in the shape the real API returns."""
        primary = next((n for n, v in self.nodes.items() if v["coordinator_state"] == "primary"), "")
        vms: dict[str, int] = {"total": len(self.vm_states())}
        for state in self.vm_states():
            vms[state] = vms.get(state, 0) + 1
        return {
            "cluster_name": "test",
            "cluster_health": {
                # As the server computes it: 100 less the deltas of unacknowledged faults.
                "health": max(0, 100 - sum(f["health_delta"] for f in self.faults if f["status"] != "ack")),
                "messages": [
                    {"id": f["id"], "health_delta": f["health_delta"], "text": f["message"]}
                    for f in self.faults
                    if f["status"] == "new"
                ],
            },
            "node_health": {n: {"health": v["health"], "messages": []} for n, v in self.nodes.items()},
            "maintenance": "true" if self.maintenance else "false",
            "primary_node": primary,
            "pvc_version": "0.1.0",
            "upstream_ip": "10.100.0.250",
            "nodes": {"total": len(self.nodes), "run,ready": len(self.nodes)},
            "vms": vms,
            "networks": self.network_count(),
            "osds": {"total": 0},
            "pools": 0,
            "volumes": 0,
            "snapshots": 0,
            "resources": {
                "memory": {
                    "total": 65536,
                    "used": 16384,
                    "free": 49152,
                    "allocated": 8192,
                    "provisioned": 12288,
                    "utilization": 25.0,
                },
                "cpu": {"total": 16, "load": 1.0, "allocated": 8, "utilization": 6.25},
                # Ceph's raw capacity is N/A until the storage mirror knows it.
                "disk": {"total": "N/A", "used": "N/A", "free": "N/A", "utilization": "N/A"},
            },
            "detail": {
                "node": [copy.deepcopy(node) for _, node in sorted(self.nodes.items())],
                "vm": [],
                "osd": [],
                "faults": copy.deepcopy(self.faults),
            },
        }

    def poll_node(self, name: str) -> dict[str, Any]:
        """The node as a GET shows it, advancing a pending transition by one poll."""
        if name in self.pending:
            field_name, final, left = self.pending[name]
            if left <= 0:
                self.nodes[name][field_name] = final
                del self.pending[name]
                if field_name == "coordinator_state" and final == "primary":
                    for other, data in self.nodes.items():
                        if other != name and data["coordinator_state"] == "primary":
                            data["coordinator_state"] = "secondary"
            else:
                self.pending[name] = (field_name, final, left - 1)
        return self.nodes[name]


def _multi(data: Any) -> dict[str, list[str]]:
    return {key: data.getlist(key) for key in data}


def build_app(api: FakeApi) -> Flask:
    """The Flask application of the fake API."""
    app = Flask("fakeapi")

    def error(message: Any, status: int) -> Any:
        return jsonify({"message": message}), status

    @app.before_request
    def record_and_check() -> Any:
        api.requests.append(
            Recorded(
                method=request.method,
                path=request.path.removeprefix("/api/v1"),
                args=_multi(request.args),
                form=_multi(request.form),
                headers=dict(request.headers),
            )
        )
        if api.fail_with:
            return error("Temporary failure", api.fail_with.pop(0))
        if api.api_key and request.headers.get("X-Api-Key") != api.api_key:
            return error("Authentication required", 401)
        return None

    @app.get("/api/v1/")
    def root() -> Any:
        return jsonify({"message": "PVC API version 1.0"})

    @app.get("/api/v1/status")
    def status_get() -> Any:
        return jsonify(api.status())

    @app.post("/api/v1/status")
    def status_post() -> Any:
        state = request.values.get("state")
        if state not in ("true", "false"):
            return error({"state": "A valid state must be specified"}, 400)
        api.maintenance = state == "true"
        return jsonify({"message": f"Set cluster maintenance mode to {state}"})

    @app.get("/api/v1/status/primary_node")
    def primary_node() -> Any:
        primary = next((n for n, v in api.nodes.items() if v["coordinator_state"] == "primary"), None)
        return jsonify({"primary_node": primary})

    @app.post("/api/v1/initialize")
    def initialize() -> Any:
        if request.values.get("yes-i-really-mean-it") != "yes":
            return error({"yes-i-really-mean-it": "This endpoint requires confirmation"}, 400)
        api.initialized = dict(request.values)
        return jsonify({"message": "Successfully initialized a new PVC cluster"})

    @app.get("/api/v1/backup")
    def backup() -> Any:
        return jsonify(json.dumps(api.backup_data))

    @app.post("/api/v1/restore")
    def restore() -> Any:
        if request.values.get("yes-i-really-mean-it") != "yes":
            return error({"yes-i-really-mean-it": "This endpoint requires confirmation"}, 400)
        api.restored = request.form.get("cluster_data")
        return jsonify({"message": "Restore completed successfully"})

    @app.get("/api/v1/tasks")
    def tasks() -> Any:
        add = _task("1a2b3c4d", "osd.add", "hv1", {"node": "hv1", "device": "/dev/sdb"}, "RUNNING")
        flush = _task("5e6f7a8b", "vm.flush_locks", "hv2", {"vm": "vm1"}, "PENDING")
        workers = [f"pvcworker@{name}" for name in sorted(api.nodes)]
        listing: dict[str, dict[str, list]] = {
            group: {w: [] for w in workers} for group in ("active", "reserved", "scheduled")
        }
        listing["active"]["pvcworker@hv1"].append(add)
        listing["reserved"]["pvcworker@hv2"].append(flush)
        return jsonify(listing)

    @app.get("/api/v1/tasks/<task_id>")
    def task(task_id: str) -> Any:
        script = api.tasks.get(task_id)
        if script is None:
            return error(f"No task with ID {task_id} found", 404)
        step = script.pop(0) if len(script) > 1 else script[0]
        return jsonify(step)

    @app.get("/api/v1/faults")
    def faults() -> Any:
        key = request.args.get("sort_key", "last_reported")
        return jsonify(sorted(api.faults, key=lambda f: f[key], reverse=True))

    @app.put("/api/v1/faults")
    def faults_ack_all() -> Any:
        for item in api.faults:
            item["status"] = "ack"
            item["acknowledged_at"] = "2024-02-01 00:00:00"
        return jsonify({"message": "Successfully acknowledged all faults"})

    @app.delete("/api/v1/faults")
    def faults_delete_all() -> Any:
        api.faults.clear()
        return jsonify({"message": "Successfully deleted all faults"})

    def find_fault(fault_id: str) -> dict[str, Any] | None:
        return next((f for f in api.faults if f["id"] == fault_id), None)

    @app.get("/api/v1/faults/<fault_id>")
    def fault_get(fault_id: str) -> Any:
        found = find_fault(fault_id)
        return jsonify([found] if found else [])

    @app.put("/api/v1/faults/<fault_id>")
    def fault_ack(fault_id: str) -> Any:
        found = find_fault(fault_id)
        if found is None:
            return error(f"No fault with ID {fault_id} found", 404)
        found["status"] = "ack"
        return jsonify({"message": f"Successfully acknowledged fault {fault_id}"})

    @app.delete("/api/v1/faults/<fault_id>")
    def fault_delete(fault_id: str) -> Any:
        found = find_fault(fault_id)
        if found is None:
            return error(f"No fault with ID {fault_id} found", 404)
        api.faults.remove(found)
        return jsonify({"message": f"Successfully deleted fault {fault_id}"})

    @app.get("/api/v1/node")
    def node_list() -> Any:
        result = []
        for name, data in sorted(api.nodes.items()):
            if request.args.get("limit") and request.args["limit"] not in name:
                continue
            if any(
                request.args.get(key) and data[key] != request.args[key]
                for key in ("daemon_state", "coordinator_state", "domain_state")
            ):
                continue
            result.append(copy.deepcopy(data))
        return jsonify(result)

    @app.get("/api/v1/node/<name>")
    def node_get(name: str) -> Any:
        if name not in api.nodes:
            return error(f"Node {name} not found", 404)
        with api.lock:
            return jsonify([copy.deepcopy(api.poll_node(name))])

    @app.post("/api/v1/node/<name>/coordinator-state")
    def coordinator_state(name: str) -> Any:
        state = request.values.get("state")
        if state not in ("primary", "secondary"):
            return error({"state": "A valid state must be specified"}, 400)
        if name not in api.nodes:
            return error(f"Node {name} not found", 404)
        node = api.nodes[name]
        if node["coordinator_state"] == state:
            return jsonify({"message": f"Node {name} is already in {state} state."})
        node["coordinator_state"] = "takeover" if state == "primary" else "relinquish"
        api.pending[name] = ("coordinator_state", state, api.transition_polls)
        return jsonify({"message": f"Setting node {name} in {state} coordinator state."})

    @app.post("/api/v1/node/<name>/domain-state")
    def domain_state(name: str) -> Any:
        state = request.values.get("state")
        if state not in ("flush", "ready"):
            return error({"state": "A valid state must be specified"}, 400)
        node = api.nodes[name]
        final = "flushed" if state == "flush" else "ready"
        if node["domain_state"] == final:
            return jsonify({"message": f"Node {name} is already in {final} domain state."})
        node["domain_state"] = "flush" if state == "flush" else "unflush"
        api.pending[name] = ("domain_state", final, api.transition_polls)
        return jsonify({"message": f"Set node {name} to {state} domain state."})

    @app.get("/api/v1/node/<name>/log")
    def node_log(name: str) -> Any:
        if name not in api.nodes:
            return error(f"Node {name} not found", 404)
        if len(api.calls("GET", f"/node/{name}/log")) > 1 and api.log_batches:
            api.log_lines.extend(api.log_batches.pop(0))
        lines = int(request.args.get("lines", 1000))
        return jsonify({"name": name, "data": "\n".join(api.log_lines[-lines:]) if lines else ""})

    return app


@contextmanager
def serve(api: FakeApi, build: Callable[[Any], Flask] | None = None) -> Iterator[int]:
    """Serve the fake API (the app ``build`` makes, default :func:`build_app`) on an ephemeral
    port of 127.0.0.1; yields the port."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, (build or build_app)(api), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=5)
