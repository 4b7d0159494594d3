"""Mesa's versioned JSON API (`/api/v1/...`), described by OpenAPI 3 at `/api/openapi.json`.

flask-smorest generates the document from the views' marshmallow schemas; errors keep Mesa's one shape
(`{"error": "..."}`, portal/errors.py), documented as the default response of every operation.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from ..url_converters import BoundedIntConverter
from .parsing import BIGGEST_ID
from .ratelimit import TokenRateLimit
from .schemas import ErrorSchema

API_VERSION = "1.0"


class MesaApi(Api):
    """flask-smorest's Api, leaving errors to portal/errors.py (one error shape for pages' scripts and API)."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        """Mesa's own handlers answer every error; none are added."""


SECURITY_SCHEMES = {
    "bearerToken": {"type": "http", "scheme": "bearer",
                    "description": "A personal API token (create one on your account page): "
                                   "`Authorization: Bearer mesa_...`. Read tokens may only use GET."},
    "session": {"type": "apiKey", "in": "cookie", "name": "session",
                "description": "The browser's signed-in session; changes also need the `X-CSRFToken` header."},
}


def init_app(app: Flask) -> None:
    """Register the API blueprints, the OpenAPI document and the reference page; exempt token requests from
    the form CSRF check (session requests are checked in tokens.authenticate_api_request)."""
    from . import articles, reference, reports, search, tickets

    app.config.update(API_TITLE="Mesa API", API_VERSION=API_VERSION, OPENAPI_VERSION="3.0.3",
                      OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="openapi.json")
    api = MesaApi(app, spec_kwargs={
        "info": {"description": "Mesa's help-desk knowledge base and tickets. Errors answer "
                                "`{\"error\": \"message\"}` with a 4xx (or 5xx) status; 413 when the body is "
                                "larger than the limit (2 MB); 429 with Retry-After when a token makes more than "
                                "MESA_API_RATE_LIMIT requests a minute. Reference: /api/reference."},
        "security": [{"bearerToken": []}, {"session": []}, {}],
    })
    api.register_converter(BoundedIntConverter, lambda _converter: {"type": "integer", "minimum": 1,
                                                                  "maximum": BIGGEST_ID})
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    csrf = app.extensions["csrf"]
    for module in (search, articles, tickets, reports):
        csrf.exempt(module.bp)
        api.register_blueprint(module.bp)
    app.register_blueprint(reference.bp)
    app.extensions["mesa_api"] = api
    app.extensions["mesa_api_rate_limit"] = TokenRateLimit(app.config["MESA_API_RATE_LIMIT"])
