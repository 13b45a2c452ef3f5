"""Reply shapes shared by the resource groups."""

from __future__ import annotations

from flask import Response, jsonify

from pvc.cluster.tasks.queries import TaskRecord, accepted


def task_accepted(record: TaskRecord) -> tuple[Response, int]:
    """The 202 answer to a request that queued a task: ``{task_id, task_name, run_on}``."""
    return jsonify(accepted(record)), 202
