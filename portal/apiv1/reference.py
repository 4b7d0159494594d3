"""The API reference page: Swagger UI from the swagger-ui-bundle package (no CDN), started by a static script."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, render_template, send_from_directory

bp = Blueprint("api_reference", __name__, url_prefix="/api")
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")


def assets_directory() -> Path:
    """Where the installed swagger-ui-bundle package keeps Swagger UI's files."""
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


@bp.get("/reference")
def reference():
    """The rendered OpenAPI reference of `/api/openapi.json`."""
    return render_template("api/reference.html")


@bp.get("/reference/assets/<name>")
def asset(name: str):
    """Swagger UI's script and style sheet, served by Mesa itself."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(assets_directory(), name, max_age=86400)
