"""Reply shapes shared by the resource groups."""

from __future__ import annotations

from flask import Response, jsonify

from pvc.api.waiting import WaitGate
from pvc.cluster.session import Cluster
from pvc.cluster.tasks.queries import TaskRecord, accepted, succeeded, wait_finished


def task_accepted(record: TaskRecord) -> tuple[Response, int]:
    """The 202 answer to a request that queued a task: ``{task_id, task_name, run_on}``."""
    return jsonify(accepted(record)), 202


def task_waited(cluster: Cluster, gate: WaitGate, record: TaskRecord) -> tuple[Response, int]:
    """The answer of a PVC v1 call that was synchronous, now carried out by a task: 200 with
    its message once it succeeded, 400 with its error if it failed, or (when it outlasts
    the API's wait limit, or no wait slot is free) 202 with the task to poll."""
    with gate.admit() as admitted:
        done = wait_finished(cluster, record.id, gate.timeout) if admitted else None
    if done is None:
        return jsonify({**accepted(record), "message": f"Still running: poll GET /tasks/{record.id}"}), 202
    if not succeeded(done):
        return jsonify(message=done.error or done.status), 400
    result = done.result if isinstance(done.result, dict) else {}
    return jsonify(message=result.get("message", done.status)), 200
