"""Storage endpoints of the fake PVC API (``/storage/ceph/...``), for the ``pvc storage`` tests.

:class:`FakeStorageApi` adds OSDs, cluster flags, pools, volumes, snapshots, benchmark jobs and
received uploads to :class:`FakeApi`; the calls change that state, and the task endpoints answer 202
with a scripted task (``task_steps``, default one SUCCESS step carrying the operation's message).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request

from tests.cli.fakeapi import FakeApi, build_app

STATUS_TEXT = """  cluster:
    id:     0b0c9a52-1111-2222-3333-444455556666
    health: HEALTH_OK

  services:
    mon: 3 daemons, quorum hv1,hv2,hv3 (age 2h)
    osd: 3 osds: 3 up (since 2h), 3 in (since 2h)

  data:
    pools:   2 pools, 96 pgs
    usage:   3.6 GiB used, 26 GiB / 30 GiB avail
"""
UTILIZATION_TEXT = """--- RAW STORAGE ---
CLASS    SIZE   AVAIL    USED  RAW USED  %RAW USED
hdd     30 GiB  26 GiB  3.6 GiB   3.6 GiB      12.00

--- POOLS ---
POOL  ID  PGS  STORED  OBJECTS  USED     %USED  MAX AVAIL
vms    1   64  1.2 GiB     310  3.6 GiB  12.00    8.4 GiB
"""
IMAGE_FORMATS = ("raw", "vmdk", "qcow2", "qed", "vdi", "vpc")


def osd(ident: str, node: str, device: str, up: int = 1, inside: int = 1) -> dict[str, Any]:
    """An OSD in the shape of ``GET /storage/ceph/osd``."""
    return {
        "id": ident,
        "node": node,
        "device": device,
        "db_device": "",
        "stats": {
            "uuid": f"aaaaaaaa-0000-0000-0000-00000000000{ident}",
            "up": up,
            "in": inside,
            "primary_affinity": 1.0,
            "utilization": 12.3,
            "var": 1.0,
            "pgs": 33,
            "kb": 10485760,
            "weight": 1.0,
            "reweight": 1.0 if inside else 0.0,
            "node": node,
            "used": "1.2G",
            "avail": "8.8G",
            # the primary samples only OSDs that are up: a down one's rates are not known
            "wr_ops": 120 if up else "N/A",
            "rd_ops": 45 if up else "N/A",
            "wr_data": 3 * 1024**2 if up else "N/A",
            "rd_data": 512 if up else "N/A",
            "state": "exists,up" if up else "exists",
        },
    }


def pool(
    name: str, ident: int, pgs: int, tier: str = "default", replcfg: str = "copies=3,mincopies=2"
) -> dict:
    """A pool in the shape of ``GET /storage/ceph/pool`` (``volume_count`` is filled in on reads)."""
    return {
        "name": name,
        "volume_count": 0,
        "tier": tier,
        "pgs": pgs,
        "stats": {
            "id": ident,
            "stored_bytes": 1288490188,
            "free_bytes": 9019431321,
            "used_bytes": 3865470566,
            "used_percent": 12.0,
            "num_objects": 310,
            "num_object_clones": 0,
            "num_object_copies": 930,
            "num_objects_missing_on_primary": 0,
            "num_objects_unfound": 0,
            "num_objects_degraded": 0,
            "read_ops": 1200,
            "read_bytes": 52428800,
            "write_ops": 3400,
            "write_bytes": 104857600,
        },
        "replication": replcfg,
    }


def volume(pool_name: str, name: str, size: str) -> dict[str, Any]:
    """A volume in the shape of ``GET /storage/ceph/volume`` (``snapshot_count`` filled in on reads)."""
    return {
        "name": name,
        "pool": pool_name,
        "stats": {
            "name": name,
            "id": "1a2b3c4d5e6f",
            "size": size,
            "objects": 2560,
            "order": 22,
            "object_size": 4194304,
            "snapshot_count": 0,
            "block_name_prefix": "rbd_data.1234",
            "format": 2,
            "features": ["layering", "exclusive-lock"],
            # as the API serves them: what PVC does not read from Ceph is N/A
            "op_features": "N/A",
            "flags": "N/A",
            "create_timestamp": "2026-11-22T12:00:00",
            "access_timestamp": "N/A",
            "modify_timestamp": "N/A",
        },
    }


def snapshot(pool_name: str, volume_name: str, name: str, size: str = "10G") -> dict[str, Any]:
    """A snapshot in the shape of ``GET /storage/ceph/snapshot``."""
    return {
        "snapshot": name,
        "volume": volume_name,
        "pool": pool_name,
        "size": size,
        "protected": False,
        "created": "2026-11-22 12:00:00",
    }


def figures(iops: float, bandwidth: float, seconds: float) -> dict[str, float]:
    """One side (``ours`` or ``raw``) of a benchmark test result."""
    return {"iops": iops, "bandwidth_mib_s": bandwidth, "seconds": seconds}


def benchmark_job(ident: int, job: str, pool_name: str) -> dict[str, Any]:
    """A finished benchmark job in the shape of ``GET /storage/ceph/benchmark``."""
    return {
        "id": ident,
        "job": job,
        "test_format": 2,
        "benchmark_result": {
            "pool": pool_name,
            "elapsed_s": 12.5,
            "tests": {
                "rand_write_4K": {
                    "ours": figures(1234.5, 4.82, 5.0),
                    "raw": figures(1272.7, 4.97, 5.0),
                    "ratio": 0.97,
                },
                "seq_write_4M": {
                    "ours": figures(28.0, 112.0, 5.0),
                    "raw": figures(35.0, 140.0, 5.0),
                    "ratio": 0.8,
                },
            },
        },
    }


@dataclass
class FakeStorageApi(FakeApi):
    """The fake API with Ceph storage; set ``task_steps`` to script the next tasks' progress."""

    osds: dict[str, dict[str, Any]] = field(default_factory=dict)
    ceph_flags: set[str] = field(default_factory=set)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    benchmarks: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    db_vgs: list[tuple[str, str]] = field(default_factory=list)
    task_steps: list[dict[str, Any]] | None = None
    task_counter: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.osds:
            self.osds = {
                "0": osd("0", "hv1", "/dev/sdb"),
                "1": osd("1", "hv2", "/dev/sdb"),
                "2": osd("2", "hv2", "/dev/sdc", up=0, inside=0),
            }
        if not self.pools:
            self.pools = {"vms": pool("vms", 1, 64), "ssdpool": pool("ssdpool", 2, 32, tier="ssd")}
        if not self.volumes:
            self.volumes = {
                ("vms", "vm1_disk0"): volume("vms", "vm1_disk0", "10G"),
                ("vms", "vm2_disk0"): volume("vms", "vm2_disk0", "20G"),
                ("ssdpool", "scratch"): volume("ssdpool", "scratch", "512M"),
            }
        if not self.snapshots:
            self.snapshots = {
                ("vms", "vm1_disk0", "before-upgrade"): snapshot("vms", "vm1_disk0", "before-upgrade")
            }
        if not self.benchmarks:
            self.benchmarks = [
                benchmark_job(1, "20261122-120000-vms", "vms"),
                {"id": 2, "job": "20261122-130000-ssdpool", "test_format": 2, "benchmark_result": "Running"},
            ]

    def new_task(self, name: str, node: str, message: str) -> dict[str, Any]:
        """Register a task (``task_steps``, else one SUCCESS step with ``message``); its 202 body."""
        self.task_counter += 1
        task_id = f"beef{self.task_counter:04d}"
        steps = self.task_steps or [{"state": "SUCCESS", "current": 1, "total": 1, "status": message}]
        self.tasks[task_id] = copy.deepcopy(steps)
        return {"task_id": task_id, "task_name": name, "run_on": node}


def _true(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes", "y", "on")


def _matches(limit: str | None, value: str) -> bool:
    return not limit or re.search(limit, value) is not None


def build_storage_app(api: FakeStorageApi) -> Flask:
    """The fake API's Flask application with the storage endpoints added."""
    app = build_app(api)

    def error(message: Any, status: int) -> Any:
        return jsonify({"message": message}), status

    def missing(*names: str) -> Any:
        """A reqparse-style 400 for the first required argument not sent, else None."""
        for name in names:
            if not request.values.get(name):
                return error({name: f"A {name} must be specified"}, 400)
        return None

    def confirmed() -> Any:
        if request.values.get("yes-i-really-mean-it") != "yes":
            return error({"yes-i-really-mean-it": "This endpoint requires confirmation"}, 400)
        return None

    def task(name: str, node: str, message: str) -> Any:
        return jsonify(api.new_task(name, node, message)), 202

    # Reports and benchmarks.

    @app.get("/api/v1/storage/ceph/status")
    def ceph_status() -> Any:
        return jsonify({"type": "status", "primary_node": "hv1", "ceph_data": STATUS_TEXT})

    @app.get("/api/v1/storage/ceph/utilization")
    def ceph_utilization() -> Any:
        return jsonify({"type": "utilization", "primary_node": "hv1", "ceph_data": UTILIZATION_TEXT})

    @app.get("/api/v1/storage/ceph/benchmark")
    def benchmark_list() -> Any:
        job = request.args.get("job")
        return jsonify([b for b in api.benchmarks if not job or b["job"] == job])

    @app.post("/api/v1/storage/ceph/benchmark")
    def benchmark_run() -> Any:
        if (bad := missing("pool")) is not None:
            return bad
        pool_name = request.values["pool"]
        if pool_name not in api.pools:
            return error(f"Pool {pool_name} not found", 400)
        job = request.values.get("name") or f"20261122-140000-{pool_name}"
        api.benchmarks.append(
            {"id": len(api.benchmarks) + 1, "job": job, "test_format": 2, "benchmark_result": "Running"}
        )
        return task("storage.benchmark", "hv1", f"Benchmark {job} finished")

    # OSDs.

    @app.post("/api/v1/storage/ceph/option")
    def ceph_option() -> Any:
        if (bad := missing("option", "action")) is not None:
            return bad
        option, action = request.values["option"], request.values["action"]
        if action not in ("set", "unset"):
            return error({"action": "A valid action must be specified"}, 400)
        if action == "set":
            api.ceph_flags.add(option)
        else:
            api.ceph_flags.discard(option)
        return jsonify({"message": f"{'Set' if action == 'set' else 'Unset'} OSD property {option}"})

    @app.post("/api/v1/storage/ceph/osddb")
    def osd_db_vg() -> Any:
        if (bad := missing("node", "device")) is not None:
            return bad
        node, device = request.values["node"], request.values["device"]
        if node not in api.nodes:
            return error(f"Node {node} not found", 400)
        api.db_vgs.append((node, device))
        return task("osd.create_db_vg", node, f"Created OSD database volume group on {node}:{device}")

    @app.get("/api/v1/storage/ceph/osd")
    def osd_list() -> Any:
        limit = request.args.get("limit")
        return jsonify([copy.deepcopy(o) for i, o in sorted(api.osds.items()) if _matches(limit, i)])

    @app.post("/api/v1/storage/ceph/osd")
    def osd_add() -> Any:
        if (bad := missing("node", "device", "weight")) is not None:
            return bad
        node, device = request.values["node"], request.values["device"]
        if node not in api.nodes:
            return error(f"Node {node} not found", 400)
        ident = str(max((int(i) for i in api.osds), default=-1) + 1)
        api.osds[ident] = osd(ident, node, device)
        api.osds[ident]["stats"]["weight"] = float(request.values["weight"])
        return task("osd.add", node, f"Created new OSD {ident} on {node}:{device}")

    def find_osd(ident: str) -> dict[str, Any] | None:
        return api.osds.get(ident)

    @app.post("/api/v1/storage/ceph/osd/<ident>")
    def osd_replace(ident: str) -> Any:
        if (bad := missing("new_device") or confirmed()) is not None:
            return bad
        found = find_osd(ident)
        if found is None:
            return error(f"OSD {ident} not found", 404)
        found["device"] = request.values["new_device"]
        return task("osd.replace", found["node"], f"Replaced OSD {ident} with {found['device']}")

    @app.put("/api/v1/storage/ceph/osd/<ident>")
    def osd_refresh(ident: str) -> Any:
        if (bad := missing("device")) is not None:
            return bad
        found = find_osd(ident)
        if found is None:
            return error(f"OSD {ident} not found", 404)
        return task("osd.refresh", found["node"], f"Refreshed OSD {ident} on {request.values['device']}")

    @app.delete("/api/v1/storage/ceph/osd/<ident>")
    def osd_remove(ident: str) -> Any:
        if (bad := confirmed()) is not None:
            return bad
        found = find_osd(ident)
        if found is None:
            return error(f"OSD {ident} not found", 404)
        del api.osds[ident]
        return task("osd.remove", found["node"], f"Removed OSD {ident}")

    @app.post("/api/v1/storage/ceph/osd/<ident>/state")
    def osd_state(ident: str) -> Any:
        state = request.values.get("state")
        if state not in ("in", "out"):
            return error({"state": "A valid state must be specified"}, 400)
        found = find_osd(ident)
        if found is None:
            return error(f"OSD {ident} not found", 404)
        found["stats"]["in"] = 1 if state == "in" else 0
        return jsonify({"message": f"Set OSD {ident} {state}"})

    # Pools.

    @app.get("/api/v1/storage/ceph/pool")
    def pool_list() -> Any:
        limit = request.args.get("limit")
        result = []
        for name, record in sorted(api.pools.items()):
            if _matches(limit, name):
                item = copy.deepcopy(record)
                item["volume_count"] = sum(1 for p, _ in api.volumes if p == name)
                result.append(item)
        return jsonify(result)

    @app.post("/api/v1/storage/ceph/pool")
    def pool_add() -> Any:
        if (bad := missing("pool", "pgs", "replcfg")) is not None:
            return bad
        name, tier = request.values["pool"], request.values.get("tier", "default")
        if tier not in ("hdd", "ssd", "nvme", "default"):
            return error({"tier": "A valid tier must be specified"}, 400)
        if name in api.pools:
            return error(f'Pool "{name}" already exists', 400)
        api.pools[name] = pool(
            name, len(api.pools) + 1, int(request.values["pgs"]), tier, request.values["replcfg"]
        )
        return jsonify({"message": f'Created RBD pool "{name}" with {request.values["pgs"]} PGs'})

    @app.put("/api/v1/storage/ceph/pool/<name>")
    def pool_set_pgs(name: str) -> Any:
        if (bad := missing("pgs")) is not None:
            return bad
        if name not in api.pools:
            return error(f'Pool "{name}" not found', 404)
        api.pools[name]["pgs"] = int(request.values["pgs"])
        return jsonify({"message": f'Set PGs count to {request.values["pgs"]} for RBD pool "{name}"'})

    @app.delete("/api/v1/storage/ceph/pool/<name>")
    def pool_remove(name: str) -> Any:
        if (bad := confirmed()) is not None:
            return bad
        if name not in api.pools:
            return error(f'Pool "{name}" not found', 404)
        del api.pools[name]
        api.volumes = {key: v for key, v in api.volumes.items() if key[0] != name}
        api.snapshots = {key: s for key, s in api.snapshots.items() if key[0] != name}
        return jsonify({"message": f'Removed RBD pool "{name}" and all volumes'})

    # Volumes.

    def volume_or_error(pool_name: str, name: str) -> tuple[dict[str, Any] | None, Any]:
        found = api.volumes.get((pool_name, name))
        return found, None if found else error(f'Volume "{name}" not found in pool "{pool_name}"', 404)

    @app.get("/api/v1/storage/ceph/volume")
    def volume_list() -> Any:
        limit, pool_name = request.args.get("limit"), request.args.get("pool")
        result = []
        for (p, name), record in sorted(api.volumes.items()):
            if _matches(limit, name) and (not pool_name or p == pool_name):
                item = copy.deepcopy(record)
                item["stats"]["snapshot_count"] = sum(1 for s in api.snapshots if s[:2] == (p, name))
                result.append(item)
        return jsonify(result)

    @app.post("/api/v1/storage/ceph/volume")
    def volume_add() -> Any:
        if (bad := missing("volume", "pool", "size")) is not None:
            return bad
        pool_name, name, size = request.values["pool"], request.values["volume"], request.values["size"]
        if pool_name not in api.pools:
            return error(f'Pool "{pool_name}" not found', 400)
        if (pool_name, name) in api.volumes:
            return error(f'Volume "{name}" already exists in pool "{pool_name}"', 400)
        api.volumes[(pool_name, name)] = volume(pool_name, name, size)
        return jsonify({"message": f'Created RBD volume "{name}" of size "{size}" in pool "{pool_name}"'})

    @app.put("/api/v1/storage/ceph/volume/<pool_name>/<name>")
    def volume_change(pool_name: str, name: str) -> Any:
        found, bad = volume_or_error(pool_name, name)
        if found is None:
            return bad
        messages = []
        if request.values.get("new_size"):
            found["stats"]["size"] = request.values["new_size"]
            messages.append(f'Resized RBD volume "{name}" to size "{found["stats"]["size"]}"')
        if request.values.get("new_name"):
            new_name = request.values["new_name"]
            if (pool_name, new_name) in api.volumes:
                return error(f'Volume "{new_name}" already exists in pool "{pool_name}"', 400)
            api.volumes[(pool_name, new_name)] = api.volumes.pop((pool_name, name))
            found["name"] = found["stats"]["name"] = new_name
            messages.append(f'Renamed RBD volume "{name}" to "{new_name}" in pool "{pool_name}"')
        if not messages:
            return error("At least one option must be specified", 400)
        return jsonify({"message": "; ".join(messages)})

    @app.delete("/api/v1/storage/ceph/volume/<pool_name>/<name>")
    def volume_remove(pool_name: str, name: str) -> Any:
        found, bad = volume_or_error(pool_name, name)
        if found is None:
            return bad
        del api.volumes[(pool_name, name)]
        return jsonify({"message": f'Removed RBD volume "{name}" in pool "{pool_name}"'})

    @app.post("/api/v1/storage/ceph/volume/<pool_name>/<name>/clone")
    def volume_clone(pool_name: str, name: str) -> Any:
        if (bad := missing("new_volume")) is not None:
            return bad
        found, bad = volume_or_error(pool_name, name)
        if found is None:
            return bad
        new_name = request.values["new_volume"]
        api.volumes[(pool_name, new_name)] = volume(pool_name, new_name, found["stats"]["size"])
        return jsonify({"message": f'Cloned RBD volume "{name}" to "{new_name}" in pool "{pool_name}"'})

    @app.post("/api/v1/storage/ceph/volume/<pool_name>/<name>/upload")
    def volume_upload(pool_name: str, name: str) -> Any:
        image_format = request.args.get("image_format")
        if image_format not in IMAGE_FORMATS:
            return error({"image_format": "A valid image format must be specified"}, 400)
        found, bad = volume_or_error(pool_name, name)
        if found is None:
            return bad
        upload = request.files.get("file")
        if upload is None or list(request.files) != ["file"]:
            return error("The upload must have exactly one file field, 'file'", 400)
        api.uploads.append(
            {
                "pool": pool_name,
                "volume": name,
                "args": {key: request.args.getlist(key) for key in request.args},
                "form": {key: request.form.getlist(key) for key in request.form},
                "filename": upload.filename,
                "data": upload.read(),
                "content_type": request.headers.get("Content-Type", ""),
                "content_length": request.headers.get("Content-Length"),
                "transfer_encoding": request.headers.get("Transfer-Encoding"),
            }
        )
        return jsonify({"message": f"Wrote uploaded file to volume {name} in pool {pool_name}"})

    # Snapshots.

    @app.get("/api/v1/storage/ceph/snapshot")
    def snapshot_list() -> Any:
        args = request.args
        return jsonify(
            [
                copy.deepcopy(record)
                for (p, v, s), record in sorted(api.snapshots.items())
                if _matches(args.get("limit"), s)
                and (not args.get("pool") or p == args["pool"])
                and (not args.get("volume") or v == args["volume"])
            ]
        )

    @app.post("/api/v1/storage/ceph/snapshot")
    def snapshot_add() -> Any:
        if (bad := missing("snapshot", "volume", "pool")) is not None:
            return bad
        p, v, s = request.values["pool"], request.values["volume"], request.values["snapshot"]
        found, bad = volume_or_error(p, v)
        if found is None:
            return error(f'Volume "{v}" not found in pool "{p}"', 400)
        if (p, v, s) in api.snapshots:
            return error(f'Snapshot "{s}" already exists for volume "{v}"', 400)
        api.snapshots[(p, v, s)] = snapshot(p, v, s, found["stats"]["size"])
        return jsonify({"message": f'Created RBD snapshot "{s}" of volume "{v}" in pool "{p}"'})

    def snapshot_or_error(p: str, v: str, s: str) -> tuple[dict[str, Any] | None, Any]:
        found = api.snapshots.get((p, v, s))
        return found, None if found else error(f'Snapshot "{s}" of volume "{v}" not found in pool "{p}"', 404)

    @app.put("/api/v1/storage/ceph/snapshot/<p>/<v>/<s>")
    def snapshot_rename(p: str, v: str, s: str) -> Any:
        if (bad := missing("new_name")) is not None:
            return bad
        found, bad = snapshot_or_error(p, v, s)
        if found is None:
            return bad
        new_name = request.values["new_name"]
        api.snapshots[(p, v, new_name)] = api.snapshots.pop((p, v, s))
        found["snapshot"] = new_name
        return jsonify(
            {"message": f'Renamed RBD snapshot "{s}" to "{new_name}" for volume "{v}" in pool "{p}"'}
        )

    @app.delete("/api/v1/storage/ceph/snapshot/<p>/<v>/<s>")
    def snapshot_remove(p: str, v: str, s: str) -> Any:
        found, bad = snapshot_or_error(p, v, s)
        if found is None:
            return bad
        del api.snapshots[(p, v, s)]
        return jsonify({"message": f'Removed RBD snapshot "{s}" of volume "{v}" in pool "{p}"'})

    @app.post("/api/v1/storage/ceph/snapshot/<p>/<v>/<s>/rollback")
    def snapshot_rollback(p: str, v: str, s: str) -> Any:
        found, bad = snapshot_or_error(p, v, s)
        if found is None:
            return bad
        return jsonify({"message": f'Rolled back RBD volume "{v}" in pool "{p}" to snapshot "{s}"'})

    return app
