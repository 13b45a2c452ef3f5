"""The Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from pvc.api import args as arg_parser
from pvc.api import auth, openapi
from pvc.api.context import ApiContext
from pvc.api.errors import ApiError
from pvc.api.resources import GROUPS
from pvc.api.routes import Route
from pvc.cluster.errors import client_reply
from pvc.errors import PVCError

PREFIX = "/api/v1"
log = logging.getLogger("pvc.api")


def refuse_large_body(limit: int) -> None:
    """ApiError 413 when the request declares a body longer than ``limit`` bytes (nothing is read)."""
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(f"The request body ({length} bytes) is larger than the {limit} bytes allowed", 413)


def _read_form(limit: int) -> MultiDict:
    """The form in the body. A body without a declared length (chunked) is read through a
    stream capped one byte above ``limit`` (MAX_CONTENT_LENGTH): if the cap was reached, the
    body was longer than allowed and what was parsed is a truncated form: 413."""
    form = request.form
    stream = request.stream
    if request.content_length is None and isinstance(stream, LimitedStream) and stream.is_exhausted:
        raise ApiError(f"The request body is larger than the {limit} bytes allowed", 413)
    return form


def _view(route: Route, context: ApiContext):
    no_form: MultiDict = MultiDict()
    max_body = context.settings.limits.max_body

    def view(**path_args: Any) -> Any:
        if not route.streams_body:
            refuse_large_body(max_body)
        g.pvc_role = auth.authorise(context.settings, context.sessions, context.logins, route)
        # A route without arguments never reads its body; the others parse it as a form.
        form = _read_form(max_body) if route.reads_form else no_form
        values = arg_parser.parse(route.args, request.args, form)
        return route.handler(**path_args, **values)

    view.__name__ = f"{route.method.lower()}_{route.handler.__name__}"
    return view


def create_app(context: ApiContext) -> Flask:
    """A Flask app serving the PVC v1 API from ``context``."""
    app = Flask("pvc.api")
    app.json.sort_keys = False
    max_body = context.settings.limits.max_body
    # One byte over the limit, so that a chunked body that reaches the cap is known to be too long.
    app.config.update(MAX_CONTENT_LENGTH=max_body + 1, MAX_FORM_MEMORY_SIZE=max_body)
    app.extensions["pvc"] = context
    routes = [route for group in GROUPS for route in group.routes]
    for route in routes:
        app.add_url_rule(PREFIX + route.path, view_func=_view(route, context), methods=[route.method])
    spec = openapi.document(routes, PREFIX)
    spec_route = Route(
        "/openapi.json", "GET", lambda: jsonify(spec), "This API", role=None, guard=openapi.GUARD
    )
    app.add_url_rule(PREFIX + spec_route.path, view_func=_view(spec_route, context), methods=["GET"])

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(message=error.message), error.status

    @app.errorhandler(PVCError)
    def domain_error(error: PVCError) -> tuple[Response, int]:
        reply = client_reply(error)
        if reply is None:
            return unexpected(error)
        status, message = reply
        if status >= 500:
            log.error("serving %s %s: %s", request.method, request.path, message)
        return jsonify(message=message), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        if isinstance(error, RequestEntityTooLarge):
            allowed = (request.max_content_length or 1) - 1  # set one above the limit
            return jsonify(message=f"The request body is larger than the {allowed} bytes allowed"), 413
        return jsonify(message=error.description or error.name), error.code or 500

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return jsonify(message=f"Internal error: {type(error).__name__}"), 500

    return app
