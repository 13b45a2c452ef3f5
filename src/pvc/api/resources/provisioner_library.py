"""Provisioner userdata, install scripts and profiles."""

from __future__ import annotations

from flask import jsonify

from pvc.api.context import database
from pvc.api.routes import OK_400, OK_400_404, OK_404, OPERATOR, Arg, RouteGroup
from pvc.cluster.provisioner import documents, profiles
from pvc.cluster.provisioner.profiles import ProfileSettings

group = RouteGroup("provisioner")
LIMIT = Arg("limit", help="names matching this regular expression")


def _documents(kind_name: str) -> None:
    """The routes of userdata or scripts: list, show, add, replace, remove."""
    kind = documents.KINDS[kind_name]
    path = f"/provisioner/{kind_name}"
    label = kind.label.lower()

    def list_documents(limit: str | None = None):
        with database().session() as session:
            return jsonify(documents.list_documents(session, kind, limit))

    def get_document(name: str):
        with database().session() as session:
            return jsonify([documents.get_document(session, kind, name)])

    def add_document(name: str, data: str):
        with database().session() as session:
            return jsonify(message=documents.add_document(session, kind, name, data))

    def add_named(name: str, data: str):
        return add_document(name, data)

    def modify_document(name: str, data: str):
        with database().session() as session:
            return jsonify(message=documents.modify_document(session, kind, name, data))

    def remove_document(name: str):
        with database().session() as session:
            return jsonify(message=documents.remove_document(session, kind, name))

    handlers = (list_documents, get_document, add_document, add_named, modify_document, remove_document)
    for handler in handlers:
        handler.__name__ = f"{handler.__name__}_{kind_name}"
    data = Arg("data", required=True, help=f"the {label} text (in the form body)")
    group.route(path, summary=f"Every {label}", args=[LIMIT])(list_documents)
    group.route(f"{path}/<name>", summary=f"One {label}", responses=OK_404)(get_document)
    group.route(
        path,
        "POST",
        summary=f"Add a {label}",
        role=OPERATOR,
        args=[Arg("name", required=True), data],
        responses=OK_400,
    )(add_document)
    group.route(
        f"{path}/<name>",
        "POST",
        summary=f"Add a {label} (named in the path)",
        role=OPERATOR,
        args=[data],
        responses=OK_400,
    )(add_named)
    group.route(
        f"{path}/<name>",
        "PUT",
        summary=f"Replace a {label}'s text",
        role=OPERATOR,
        args=[data],
        responses=OK_400_404,
    )(modify_document)
    group.route(
        f"{path}/<name>",
        "DELETE",
        summary=f"Remove a {label} (not one a profile uses)",
        role=OPERATOR,
        responses=OK_400_404,
    )(remove_document)


for _kind in documents.KINDS:
    _documents(_kind)


REFERENCE_ARGS = [
    Arg("system_template"),
    Arg("network_template"),
    Arg("storage_template"),
    Arg("userdata"),
    Arg("script"),
    Arg("ova"),
    Arg("arg", many=True, help="a script argument key=value (repeatable)"),
]


def _settings(arg: list[str] | None = None, **names: str | None) -> ProfileSettings:
    return ProfileSettings(arguments=arg, **names)


@group.route("/provisioner/profile", summary="Every profile", args=[LIMIT])
def list_profiles(limit: str | None = None):
    with database().session() as session:
        return jsonify(profiles.list_profiles(session, limit))


@group.route("/provisioner/profile/<profile>", summary="One profile", responses=OK_404)
def get_profile(profile: str):
    with database().session() as session:
        return jsonify([profiles.get_profile(session, profile)])


@group.route(
    "/provisioner/profile",
    "POST",
    summary="Add a profile",
    role=OPERATOR,
    args=[Arg("name", required=True), Arg("profile_type", default="provisioner"), *REFERENCE_ARGS],
    responses=OK_400,
)
def add_profile(name: str, profile_type: str = "provisioner", **references):
    with database().session() as session:
        return jsonify(message=profiles.add_profile(session, name, profile_type, _settings(**references)))


@group.route(
    "/provisioner/profile/<profile>",
    "POST",
    summary="Add a profile (named in the path)",
    role=OPERATOR,
    args=[Arg("profile_type", default="provisioner"), *REFERENCE_ARGS],
    responses=OK_400,
)
def add_profile_named(profile: str, profile_type: str = "provisioner", **references):
    return add_profile(profile, profile_type, **references)


@group.route(
    "/provisioner/profile/<profile>",
    "PUT",
    summary="Change a profile (arg replaces the arguments; one empty arg clears them)",
    role=OPERATOR,
    args=REFERENCE_ARGS,
    responses=OK_400_404,
)
def modify_profile(profile: str, **references):
    with database().session() as session:
        return jsonify(message=profiles.modify_profile(session, profile, _settings(**references)))


@group.route(
    "/provisioner/profile/<profile>", "DELETE", summary="Remove a profile", role=OPERATOR, responses=OK_404
)
def remove_profile(profile: str):
    with database().session() as session:
        return jsonify(message=profiles.remove_profile(session, profile))
