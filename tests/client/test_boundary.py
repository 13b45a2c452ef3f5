"""pvc.client stands alone: it imports no CLI, display, cluster-internal or adapter package."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("rich", "click", "kazoo", "flask", "libvirt", "rados", "rbd")


def test_client_imports_only_itself_and_pvc_basics() -> None:
    script = (
        "import json, sys\n"
        "import pvc.client, pvc.client.connections, pvc.client.http, pvc.client.waiters\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert not [name for name in loaded if name.split(".")[0] in FORBIDDEN]
    # Of pvc itself, only the client and the shared exceptions.
    assert {name.split(".")[1] for name in loaded if name.startswith("pvc.")} == {"client", "errors"}
