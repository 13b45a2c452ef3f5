"""The OpenAPI 3 document, generated from the declared routes."""

from __future__ import annotations

import re

import pvc
from pvc.api.routes import Route

#: The ``api.authentication`` flag that makes ``/openapi.json`` need a key.
GUARD = "protect_openapi"
_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number"}


def openapi_path(flask_path: str) -> str:
    return _PATH_PARAM.sub(r"{\1}", flask_path)


def document(routes: list[Route], prefix: str) -> dict:
    """An OpenAPI 3.0 description of every route."""
    paths: dict[str, dict] = {}
    for route in routes:
        path = prefix + openapi_path(route.path)
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(route.path)
        ]
        body: dict[str, dict] = {}
        for arg in route.args:
            schema: dict = {"type": _TYPES[arg.kind]}
            if arg.choices is not None:
                schema["enum"] = list(arg.choices)
            if arg.minimum is not None:
                schema["minimum"] = arg.minimum
            if arg.many:
                schema = {"type": "array", "items": schema}
            if arg.body_only:
                body[arg.name] = {**schema, "description": arg.help}
                continue
            parameters.append(
                {
                    "name": arg.name,
                    "in": "query",
                    "required": arg.required,
                    "description": arg.help,
                    "schema": schema,
                    **({"style": "form", "explode": True} if arg.many else {}),
                }
            )
        responses = {
            code: {
                "description": text,
                "content": {route.content_type: {"schema": {}}},
            }
            for code, text in route.responses.items()
        }
        for code, text in (("400", "Bad request"), ("404", "Not found")):
            responses.setdefault(code, {"description": text, "content": _message()})
        if route.method != "GET":
            responses.setdefault(
                "413", {"description": "The request body is too large", "content": _message()}
            )
        if route.role is not None:
            responses.setdefault("401", {"description": "Missing or invalid API key", "content": _message()})
            responses.setdefault("403", {"description": "The key's role is too low", "content": _message()})
        operation = {
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": parameters,
            "responses": responses,
            "operationId": f"{route.method.lower()}_{route.handler.__name__}",
        }
        if body:
            required = [arg.name for arg in route.args if arg.body_only and arg.required]
            form = {"type": "object", "properties": body, "required": required}
            operation["requestBody"] = {"content": {"application/x-www-form-urlencoded": {"schema": form}}}
        if route.role is None:
            operation["security"] = []
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "PVC API", "version": pvc.__version__},
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
        "security": [{"apiKey": []}],
    }


def _message() -> dict:
    return {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"message": {"type": "string"}},
                "required": ["message"],
            }
        }
    }
