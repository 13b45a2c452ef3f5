"""The child side of :mod:`pvc.cluster.provisioner.sandbox`: runs one hook of an install
script, already as the unprivileged account and without a network.

It reads one JSON request on stdin (``name``, ``text``, ``hook``, ``vm``, ``required``)
and writes JSON lines on stdout: ``{"log": ...}`` for each line the script logs, then one
``{"result": ...}`` or ``{"error": ...}``. Nothing the script prints reaches that stream
(its stdout goes to the log too), so it cannot fake a result.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from types import SimpleNamespace
from typing import Any


class HookFailed(Exception):
    """Raised by the script's ``fail()``."""


def _namespace(value: Any) -> Any:
    """``vm_data`` with attribute access (``vm.name``, ``vm.disks[0].pool``) and item access."""
    if isinstance(value, dict):
        return _Data({key: _namespace(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_namespace(item) for item in value]
    return value


class _Data(SimpleNamespace):
    def __init__(self, values: dict) -> None:
        super().__init__(**values)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in vars(self)

    def keys(self) -> list[str]:
        return list(vars(self))

    def items(self) -> list[tuple[str, Any]]:
        return list(vars(self).items())


def main() -> int:
    # the answer channel keeps a descriptor of its own; fd 1 (and sys.stdout) become stderr,
    # so nothing the script or its subprocesses print can reach or break the channel
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(message: dict) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    def log(*parts: Any) -> None:
        emit({"log": " ".join(str(part) for part in parts)})

    def fail(message: str) -> None:
        raise HookFailed(str(message))

    request = json.loads(sys.stdin.read())
    name, hook = request["name"], request["hook"]
    namespace = {"__name__": f"pvc_script_{name}", "log": log, "fail": fail}
    try:
        exec(compile(request["text"], f"<script {name}>", "exec"), namespace)
        function = namespace.get(hook)
        if function is None:
            if request.get("required"):
                emit({"error": f"script {name} has no {hook}() hook"})
                return 1
            emit({"result": None})
            return 0
        if not callable(function):
            emit({"error": f"{hook} in script {name} is not a function"})
            return 1
        result = function(_namespace(request["vm"]))
        json.dumps(result)  # the result must travel as JSON
    except HookFailed as error:
        emit({"error": str(error)})
        return 1
    except SyntaxError as error:
        emit({"error": f"script {name} is not valid Python: {error.msg} at line {error.lineno}"})
        return 1
    except Exception as error:  # the script's own failure, reported with where it happened
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<script")]
        where = f" (line {frames[-1].lineno})" if frames else ""
        emit({"error": f"{type(error).__name__}: {error}{where}"})
        return 1
    emit({"result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
