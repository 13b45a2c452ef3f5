"""The Flask application factory."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from pvc.api import args as arg_parser
from pvc.api import auth, openapi
from pvc.api.context import ApiContext
from pvc.api.errors import ApiError
from pvc.api.resources import GROUPS
from pvc.api.routes import Route
from pvc.cluster.errors import ClusterError
from pvc.state.errors import ConflictError, StateError

PREFIX = "/api/v1"
log = logging.getLogger("pvc.api")


def _view(route: Route, context: ApiContext):
    def view(**path_args: Any) -> Any:
        auth.authorise(context.settings, route)
        values = arg_parser.parse(route.args, request.args, request.form)
        return route.handler(**path_args, **values)

    view.__name__ = f"{route.method.lower()}_{route.handler.__name__}"
    return view


def create_app(context: ApiContext) -> Flask:
    """A Flask app serving the PVC v1 API from ``context``."""
    app = Flask("pvc.api")
    app.secret_key = secrets.token_hex(32)
    app.json.sort_keys = False
    app.extensions["pvc"] = context
    routes = [route for group in GROUPS for route in group.routes]
    for route in routes:
        app.add_url_rule(PREFIX + route.path, view_func=_view(route, context), methods=[route.method])
    spec = openapi.document(routes, PREFIX)
    app.add_url_rule(PREFIX + "/openapi.json", "openapi", lambda: jsonify(spec))

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(message=error.message), error.status

    @app.errorhandler(ClusterError)
    def cluster_error(error: ClusterError) -> tuple[Response, int]:
        return jsonify(message=str(error)), error.status

    @app.errorhandler(ConflictError)
    def conflict(error: ConflictError) -> tuple[Response, int]:
        return jsonify(message=f"The request lost a race with another change; retry it ({error})"), 409

    @app.errorhandler(StateError)
    def state_error(error: StateError) -> tuple[Response, int]:
        log.error("state error serving %s %s: %s", request.method, request.path, error)
        return jsonify(message=f"The cluster state store is unavailable: {error}"), 503

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        return jsonify(message=error.description or error.name), error.code or 500

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return jsonify(message=f"Internal error: {type(error).__name__}"), 500

    return app
