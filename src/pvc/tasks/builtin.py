"""Task types that ship with the task subsystem itself.

``test.sleep`` exists for the tests and for checking a cluster's task plumbing end to
end (``pvc`` → API → a node's workers → progress → result). Task types of the domain
library (cluster backup, OSD work...) are defined beside the code they serve and listed
in :data:`pvc.cluster.tasks.catalog.DOMAIN_TASKS`.
"""

from __future__ import annotations

from typing import Any

from pvc.tasks.context import TaskContext
from pvc.tasks.errors import InvalidTaskError
from pvc.tasks.registry import task_type

#: Longest sleep test.sleep accepts, in seconds.
MAX_SLEEP = 3600.0


def _check_sleep(args: dict[str, Any]) -> dict[str, Any]:
    try:
        seconds = float(args.get("seconds", 1.0))
        steps = int(args.get("steps", 10))
    except (TypeError, ValueError) as error:
        raise InvalidTaskError(f"test.sleep: seconds and steps must be numbers ({error})") from error
    if not 0 <= seconds <= MAX_SLEEP:
        raise InvalidTaskError(f"test.sleep: seconds must be between 0 and {MAX_SLEEP:g}")
    if steps < 1:
        raise InvalidTaskError("test.sleep: steps must be at least 1")
    return {"seconds": seconds, "steps": steps}


@task_type("test.sleep", validate=_check_sleep)
def sleep(ctx: TaskContext, seconds: float = 1.0, steps: int = 10) -> dict[str, Any]:
    """Sleep ``seconds`` in ``steps`` equal parts, reporting progress after each part.

    Stops early when cancelled (the task then ends FAILURE "cancelled").
    """
    steps = max(1, int(steps))
    pause = float(seconds) / steps
    ctx.progress(0, steps, f"sleeping {float(seconds):g} s in {steps} steps")
    for step in range(1, steps + 1):
        if ctx.sleep(pause):
            return {"message": f"stopped after {step - 1} of {steps} steps", "steps": step - 1}
        ctx.progress(step, steps, f"step {step} of {steps}")
    return {"message": f"slept {float(seconds):g} s", "steps": steps}


#: The task types of this module, for a daemon's registry.
BUILTIN_TASKS = (sleep,)
