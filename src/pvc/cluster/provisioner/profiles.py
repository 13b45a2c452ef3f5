"""Profiles: a system template with (optionally) network and storage templates, userdata,
and an install script with its arguments (``provisioner``), or an OVA (``ova``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pvc.cluster.errors import ClusterError
from pvc.cluster.provisioner import validation as check
from pvc.db.models import NetworkTemplate, Ova, Profile, Script, StorageTemplate, SystemTemplate, Userdata

PROFILE_TYPES = ("provisioner", "ova")
#: A script argument: ``key=value``; the key is an identifier.
ARGUMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}=.{0,1024}", re.DOTALL)
#: The references of a profile: its column, the model and how a message names it.
REFERENCES = {
    "system_template": (SystemTemplate, "System template"),
    "network_template": (NetworkTemplate, "Network template"),
    "storage_template": (StorageTemplate, "Storage template"),
    "userdata": (Userdata, "Userdata"),
    "script": (Script, "Script"),
    "ova": (Ova, "OVA"),
}


def _names(session: Session, model: type) -> dict[int, str]:
    return {row[0]: row[1] for row in session.execute(select(model.id, model.name))}


def list_profiles(session: Session, limit: str | None = None) -> list[dict]:
    rows = check.listed(session, Profile, limit)
    names = {column: _names(session, model) for column, (model, _) in REFERENCES.items()}
    return [view(row, names) for row in rows]


def get_profile(session: Session, name: str) -> dict:
    row = check.by_name(session, Profile, name, "Profile")
    names = {column: _names(session, model) for column, (model, _) in REFERENCES.items()}
    return view(row, names)


def view(row: Profile, names: dict[str, dict[int, str]]) -> dict:
    shown = {column: names[column].get(getattr(row, column)) for column in REFERENCES}
    return {
        "id": row.id,
        "name": row.name,
        "profile_type": row.profile_type,
        **shown,
        "arguments": row.arguments,
    }


@dataclass(frozen=True)
class ProfileSettings:
    """Names of what a profile uses (None: unchanged on modify, none on add); ``arguments``
    None leaves them, an empty list clears them."""

    system_template: str | None = None
    network_template: str | None = None
    storage_template: str | None = None
    userdata: str | None = None
    script: str | None = None
    ova: str | None = None
    arguments: Sequence[str] | None = None


def _arguments(values: Sequence[str]) -> list[str]:
    kept = [value for value in values if value != ""]
    for value in kept:
        if not ARGUMENT.fullmatch(value):
            raise ClusterError(f"script argument '{value[:80]}' is not key=value (key: letters, digits, '_')")
    return kept


def _apply(session: Session, row: Profile, settings: ProfileSettings) -> None:
    for column, (model, label) in REFERENCES.items():
        value = getattr(settings, column)
        if value is not None:
            setattr(row, column, check.by_name(session, model, value, label).id if value else None)
    if settings.arguments is not None:
        row.arguments = _arguments(settings.arguments)


def _complete(row: Profile) -> None:
    if row.system_template is None:
        raise ClusterError(f"Profile '{row.name}' needs a system template")
    if row.profile_type == "provisioner" and row.script is None:
        raise ClusterError(f"Profile '{row.name}' of type provisioner needs a script")
    if row.profile_type == "ova" and row.ova is None:
        raise ClusterError(f"Profile '{row.name}' of type ova needs an OVA")


def add_profile(session: Session, name: str, profile_type: str, settings: ProfileSettings) -> str:
    check.name(name, "Profile")
    check.choice(profile_type, PROFILE_TYPES, "profile_type")
    check.unique(session, Profile, name, "Profile")
    row = Profile(name=name, profile_type=profile_type, arguments=[])
    _apply(session, row, settings)
    _complete(row)
    session.add(row)
    return f'Added new profile "{name}"'


def modify_profile(session: Session, name: str, settings: ProfileSettings) -> str:
    row = check.by_name(session, Profile, name, "Profile")
    if settings.system_template == "":
        raise ClusterError("a profile cannot be left without a system template")
    _apply(session, row, settings)
    _complete(row)
    return f'Modified profile "{name}"'


def remove_profile(session: Session, name: str) -> str:
    session.delete(check.by_name(session, Profile, name, "Profile"))
    return f'Removed profile "{name}"'


def userdata_of(session: Session, profile_name: str) -> str | None:
    """The userdata text of profile ``profile_name`` (None: no such profile, or it has none)."""
    row = session.scalar(select(Profile).where(Profile.name == profile_name))
    if row is None or row.userdata is None:
        return None
    userdata = session.get(Userdata, row.userdata)
    return userdata.userdata if userdata is not None else None
