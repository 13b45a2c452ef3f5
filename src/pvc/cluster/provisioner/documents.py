"""Userdata (cloud-init) and install scripts: named texts, checked when stored.

Userdata that declares itself cloud-config (``#cloud-config``) must be a YAML mapping;
a script must be Python that parses. What a script does is only seen when a VM is
created from it (:mod:`pvc.cluster.provisioner.create`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner import validation as check
from pvc.db.models import Profile, Script, Userdata

#: Longest userdata or script stored (bytes of UTF-8).
MAX_DOCUMENT = 1024 * 1024
CLOUD_CONFIG = "#cloud-config"


@dataclass(frozen=True)
class Kind:
    """One kind of named text: its model, its text column and how it is checked."""

    model: type
    column: str
    label: str
    reference: str  # the profile column that uses it


USERDATA = Kind(Userdata, "userdata", "Userdata", "userdata")
SCRIPT = Kind(Script, "script", "Script", "script")
KINDS = {"userdata": USERDATA, "script": SCRIPT}


def view(kind: Kind, row) -> dict:
    return {"id": row.id, "name": row.name, kind.column: getattr(row, kind.column)}


def list_documents(session: Session, kind: Kind, limit: str | None = None) -> list[dict]:
    return [view(kind, row) for row in check.listed(session, kind.model, limit)]


def get_document(session: Session, kind: Kind, name: str) -> dict:
    return view(kind, check.by_name(session, kind.model, name, kind.label))


#: The placeholders of userdata, filled in for each VM when it asks for its userdata.
USERDATA_PLACEHOLDERS = ("{vm_name}", "{vm_uuid}", "{profile}")


def render_userdata(text: str, values: dict[str, str]) -> str:
    """``text`` with each placeholder replaced by ``values[placeholder]`` (plain replacement:
    no other syntax is interpreted)."""
    for placeholder in USERDATA_PLACEHOLDERS:
        text = text.replace(placeholder, values.get(placeholder, ""))
    return text


def checked_text(kind: Kind, name: str, text: str) -> str:
    """``text`` if it may be stored as ``kind``; ClusterError (400) saying why not."""
    if len(text.encode()) > MAX_DOCUMENT:
        raise ClusterError(f"{kind.label} '{name}' is larger than {MAX_DOCUMENT} bytes")
    if not text.strip():
        raise ClusterError(f"{kind.label} '{name}' is empty")
    if "\x00" in text:
        raise ClusterError(f"{kind.label} '{name}' contains a NUL character")
    try:
        _check_syntax(kind, name, text)
    except (RecursionError, MemoryError, ValueError):
        raise ClusterError(f"{kind.label} '{name}' is nested too deeply to be checked") from None
    return text


def _check_syntax(kind: Kind, name: str, text: str) -> None:
    if kind is USERDATA and text.lstrip().startswith(CLOUD_CONFIG):
        # checked as a VM will get it: with names where the placeholders are
        rendered = render_userdata(text, dict.fromkeys(USERDATA_PLACEHOLDERS, "vm"))
        try:
            document = yaml.safe_load(rendered)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ClusterError(
                f"Userdata '{name}' declares #cloud-config but is not valid YAML{where}"
            ) from None
        if not isinstance(document, dict):
            raise ClusterError(f"Userdata '{name}' declares #cloud-config but is not a YAML mapping")
    if kind is SCRIPT:
        try:
            ast.parse(text, filename=name)
        except SyntaxError as error:
            raise ClusterError(
                f"Script '{name}' is not valid Python: {error.msg} at line {error.lineno}"
            ) from None


def add_document(session: Session, kind: Kind, name: str, text: str) -> str:
    check.name(name, kind.label)
    check.unique(session, kind.model, name, kind.label)
    session.add(kind.model(name=name, **{kind.column: checked_text(kind, name, text)}))
    return f'Added new {kind.label.lower()} "{name}"'


def modify_document(session: Session, kind: Kind, name: str, text: str) -> str:
    row = check.by_name(session, kind.model, name, kind.label)
    setattr(row, kind.column, checked_text(kind, name, text))
    return f'Modified {kind.label.lower()} "{name}"'


def remove_document(session: Session, kind: Kind, name: str) -> str:
    row = check.by_name(session, kind.model, name, kind.label)
    column = getattr(Profile, kind.reference)
    users = session.scalars(select(Profile.name).where(column == row.id).order_by(Profile.name)).all()
    if users:
        raise ClusterError(f"{kind.label} '{name}' is used by profile(s) {', '.join(users)}")
    session.delete(row)
    return f'Removed {kind.label.lower()} "{name}"'
