"""Checks of what clients give the provisioner: names, choices and numbers (400 on error)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pvc.cluster.errors import ClusterError, NotFoundError
from pvc.cluster.filters import PLAIN_NAME, matcher

#: How a VM's target node is chosen (``node_selector``); ``none`` leaves it to the cluster.
NODE_SELECTORS = ("mem", "memprov", "vcpus", "vms", "load", "none")
MIGRATION_METHODS = ("live", "shutdown", "none")
FILESYSTEMS = ("ext4", "ext3", "ext2", "xfs", "btrfs", "swap")
DISK_ID = re.compile(r"(sd|vd|hd)[a-z]")
MOUNTPOINT = re.compile(r"/[A-Za-z0-9_./-]{0,254}")
FILESYSTEM_ARG = re.compile(r"[A-Za-z0-9_=.,:/+-]{1,64}")
#: A MAC template: hex digits and ':' with the placeholders the create task fills in.
MAC_TEMPLATE = re.compile(r"([0-9a-fA-F:]|\{prefix\}|\{vmid\}|\{netid\})+")
MAX_VCPUS = 512
MAX_VRAM_MB = 16 * 1024 * 1024


def name(value: str, what: str) -> str:
    if not PLAIN_NAME.fullmatch(value or ""):
        raise ClusterError(
            f"{what} name '{value}' is not valid: letters, digits, '.', '_' and '-' (up to 128, "
            "not starting with '.' or '-')"
        )
    return value


def choice(value: str | None, choices: Sequence[str], what: str) -> str | None:
    if value is not None and value not in choices:
        raise ClusterError(f"{what} '{value}' is not one of {', '.join(choices)}")
    return value


def bounded(value: int | None, low: int, high: int, what: str) -> int | None:
    if value is not None and not low <= value <= high:
        raise ClusterError(f"{what} must be between {low} and {high}, not {value}")
    return value


def address(value: str | None, what: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        raise ClusterError(f"{what} '{value}' is not an IP address") from None
    if "%" in str(parsed):
        raise ClusterError(f"{what} '{value}' has a zone; give a plain address")
    return str(parsed)


def node_limit(value: str | None) -> str | None:
    """A comma-separated list of node names."""
    if value in (None, ""):
        return None
    names = [part.strip() for part in value.split(",")]
    for part in names:
        name(part, "node_limit node")
    return ",".join(names)


def unique(session: Session, model: type, value: str, what: str) -> None:
    if session.scalar(select(model).where(model.name == value)) is not None:
        raise ClusterError(f"{what} '{value}' already exists")


def by_name(session: Session, model: type, value: str, what: str):
    if not PLAIN_NAME.fullmatch(value or ""):  # no such name can have been stored (NULs included)
        raise NotFoundError(f"{what} '{value[:130]}' not found")
    found = session.scalar(select(model).where(model.name == value))
    if found is None:
        raise NotFoundError(f"{what} '{value}' not found")
    return found


def listed(session: Session, model: type, limit: str | None) -> list:
    matches = matcher(limit)
    return [row for row in session.scalars(select(model).order_by(model.name)) if matches(row.name)]
