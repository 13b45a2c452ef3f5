"""Task types of the domain library."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pvc.cluster import backup as backup_mod
from pvc.tasks import InvalidTaskError, TaskContext, task


def _absolute_path(args: dict) -> dict:
    path = args.get("path")
    if not isinstance(path, str) or not os.path.isabs(path) or path.endswith("/"):
        raise InvalidTaskError("path must be an absolute file path")
    return args


@task("cluster.backup", validate=_absolute_path)
def backup_to_file(ctx: TaskContext, *, path: str) -> dict:
    """Write a whole-cluster state backup to ``path`` on the node that runs the task."""
    ctx.progress(0, 3, "reading cluster state")
    data = backup_mod.backup(ctx.store)
    ctx.check_cancelled()
    ctx.progress(1, 3, f"writing {len(data)} keys")
    text = json.dumps(data, indent=1, sort_keys=True)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text)
    partial.replace(target)
    ctx.progress(2, 3, "verifying")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    ctx.progress(3, 3, "done")
    return {
        "message": f"Backed up {len(data)} keys to {target}",
        "path": str(target),
        "keys": len(data),
        "sha256": digest,
    }
