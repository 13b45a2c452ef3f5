"""Declared routes: each endpoint states its path, method, arguments and role once.

The declarations drive request parsing, authorisation and the OpenAPI document, so the
three can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

READ_ONLY, OPERATOR, ADMIN = "read-only", "operator", "admin"
ROLE_RANK = {READ_ONLY: 0, OPERATOR: 1, ADMIN: 2}
#: The words a boolean argument may be (compared lower-case): strtobool's, as PVC v1 parses them.
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off"})


@dataclass(frozen=True)
class Arg:
    """One request argument, read from the query string or a form body."""

    name: str
    kind: type = str  # str, int, float or bool
    required: bool = False
    default: Any = None
    choices: Sequence[str] | None = None
    many: bool = False  # repeated keys give a list
    help: str = ""
    minimum: int | None = None
    #: Read from the form body only (a secret must never travel in the URL).
    body_only: bool = False


#: The confirmation of a destructive request: a boolean; false refuses the request.
#: The response sets most routes declare.
OK_400 = {"200": "OK", "400": "Bad request"}
OK_404 = {"200": "OK", "404": "Not found"}
OK_400_404 = {"200": "OK", "400": "Bad request", "404": "Not found"}

CONFIRM = Arg("yes-i-really-mean-it", kind=bool, required=True, help="confirms a destructive operation")


@dataclass
class Route:
    """An endpoint: path (Flask syntax), method, handler and what it accepts."""

    path: str
    method: str
    handler: Callable[..., Any]
    summary: str
    args: Sequence[Arg] = ()
    role: str | None = READ_ONLY  # None: no authentication
    #: For an open route: the ``api.authentication`` flag that makes it need ``read-only``.
    guard: str = ""
    responses: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    tag: str = ""
    #: The handler reads the request body itself (an upload) and bounds it: the arguments
    #: come from the query string only and the generic body limit does not apply.
    streams_body: bool = False

    @property
    def reads_form(self) -> bool:
        """Whether the body is parsed as a form: only for routes that declare arguments."""
        return bool(self.args) and not self.streams_body


class RouteGroup:
    """The endpoints of one resource group (one module)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.routes: list[Route] = []

    def route(
        self,
        path: str,
        method: str = "GET",
        *,
        summary: str,
        args: Sequence[Arg] = (),
        role: str | None = READ_ONLY,
        responses: dict[str, str] | None = None,
        content_type: str = "application/json",
        guard: str = "",
        streams_body: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.routes.append(
                Route(
                    path=path,
                    method=method,
                    handler=handler,
                    summary=summary,
                    args=args,
                    role=role,
                    guard=guard,
                    responses=responses or {"200": "OK"},
                    content_type=content_type,
                    tag=self.tag,
                    streams_body=streams_body,
                )
            )
            return handler

        return decorate
