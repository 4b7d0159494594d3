"""Mesa's web portal: ``create_app`` builds a configured Flask application."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from .config import load_settings


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app from MESA_* settings (or ``test_config``), with its extensions and blueprints."""
    config = load_settings(overrides=test_config)
    app = Flask(__name__, instance_path=str(Path(config["MESA_INSTANCE_DIR"]).resolve()))
    app.config.update(config)
    if app.config.get("TESTING") and "MESA_BACKGROUND_JOBS" not in (test_config or {}):
        app.config["MESA_BACKGROUND_JOBS"] = 0  # tests start the background jobs only when they ask
    from indexer import RANKINGS

    if app.config["MESA_RANKING"] not in RANKINGS:
        raise RuntimeError(f"MESA_RANKING={app.config['MESA_RANKING']!r} is not a ranking; choose one of "
                           f"{', '.join(RANKINGS)}.")
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    from .secret_key import secret_key_for

    app.config["SECRET_KEY"] = secret_key_for(app.config, Path(app.instance_path))
    app.config["MAX_CONTENT_LENGTH"] = app.config.get("MAX_CONTENT_LENGTH") or 2 * 1024 * 1024

    from . import (auth, background, commands, db, errors, health, i18n, request_log, safe_input, search,
                   security_headers, session_cookies, throttle, url_converters)

    url_converters.init_app(app)  # before any route is added
    session_cookies.init_app(app)
    security_headers.init_app(app)
    request_log.init_app(app)
    db.init_app(app)
    background.init_app(app)
    from .views import attachments as attachment_views

    attachment_views.init_app(app)  # before safe_input: the forms that carry files may be larger
    safe_input.init_app(app)
    search.init_app(app)
    throttle.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    commands.init_app(app)
    health.init_app(app)

    from flask_wtf.csrf import CSRFProtect

    CSRFProtect(app)

    from .domain.sla import SlaPolicy

    try:
        app.extensions["mesa_sla"] = SlaPolicy.parse(app.config["MESA_SLA_TARGETS"], app.config["MESA_ESCALATE_AT"])
    except ValueError as exc:
        raise RuntimeError(f"MESA_SLA_TARGETS / MESA_ESCALATE_AT: {exc}") from None

    from .views import account, admin, api, desk, gaps, help, kb, password, public, reports, tickets, trends

    for blueprint in (public.bp, account.bp, api.bp, help.bp, tickets.bp, desk.bp, kb.bp, reports.bp, trends.bp,
                      gaps.bp, admin.bp, password.bp):
        app.register_blueprint(blueprint)
    from .views import mail_links

    app.register_blueprint(mail_links.bp)
    from . import apiv1

    apiv1.init_app(app)
    return app
