"""The Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

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


def _view(route: Route, context: ApiContext):
    def view(**path_args: Any) -> Any:
        auth.authorise(context.settings, context.sessions, context.logins, route)
        values = arg_parser.parse(route.args, request.args, request.form)
        return route.handler(**path_args, **values)

    view.__name__ = f"{route.method.lower()}_{route.handler.__name__}"
    return view


def create_app(context: ApiContext) -> Flask:
    """A Flask app serving the PVC v1 API from ``context``."""
    app = Flask("pvc.api")
    app.json.sort_keys = False
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
        return jsonify(message=error.description or error.name), error.code or 500

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return jsonify(message=f"Internal error: {type(error).__name__}"), 500

    return app
