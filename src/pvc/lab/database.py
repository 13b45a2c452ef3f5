"""The lab's database: a Patroni member on every coordinator, with the cluster's ZooKeeper."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys

from pvc.client.http import ApiClient
from pvc.config import load_config
from pvc.config.credentials import DatabaseCredentials
from pvc.db import members
from pvc.db.patroni import MemberFiles
from pvc.lab.layout import LabLayout
from pvc.lab.private_files import write_private
from pvc.lab.witness import lab_store
from pvc.processes import ProcessRef

ROLE = "patroni"


def write_credentials(layout: LabLayout) -> None:
    """New passwords for the database roles (mode 0600), made anew by every ``up``."""
    lines = [f"{name}:{secrets.token_urlsafe(24)}" for name in DatabaseCredentials._fields]
    write_private(layout.database_auth_file, "\n".join(lines))


def command(layout: LabLayout, node: str) -> tuple[list[str], dict[str, str]]:
    """The member's command line (run inside the node) and environment: it reads the node's
    pvc.conf, writes Patroni's files and becomes Patroni (see :mod:`pvc.db.service`)."""
    return [sys.executable, "-m", "pvc.db.service"], {
        **os.environ,
        "PVC_CONFIG_FILE": str(layout.config_file(node)),
    }


def signal_member(layout: LabLayout, node: str, ref: ProcessRef, sig: int) -> None:
    """Signal a node's database member as a whole: Patroni (the service's process group)
    and the PostgreSQL server it runs, which has a session of its own."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(ref.pid, sig)
    files = MemberFiles.of(load_config(layout.config_file(node)))
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int((files.data_dir / "postmaster.pid").read_text().split()[0]), sig)


def member_roles(layout: LabLayout) -> dict[str, str]:
    """Each database member's role (``primary``, ``replica``...) as Patroni records it."""
    with lab_store(layout) as store:
        return {member.name: member.role for member in members.members(store, layout.cluster_name)}


def leader(layout: LabLayout) -> str | None:
    """The member holding Patroni's leader key, or None."""
    with lab_store(layout) as store:
        return members.leader(store, layout.cluster_name)


def provisioner_answers(api: ApiClient, name: str) -> bool:
    """Whether a provisioner write (a storage template ``name``, made once: a retry finds it
    there) and a read both succeed through the lab's API."""
    try:
        added = api.post("/provisioner/template/storage", data={"name": name})
        listed = api.get("/provisioner/template/storage")
    except Exception:  # the API moving, or refusing connections for a moment
        return False
    written = added.status == 200 or (added.status == 400 and "already exists" in added.message)
    return written and listed.status == 200 and name in [t.get("name") for t in listed.data or []]
