"""luyue (履约): order fulfilment for chains of warehouses and stores."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from flask import Flask
from flask.logging import default_handler
from flask_babel import Babel
from flask_sock import Sock
from htmx_flask import Htmx

from app.config import Settings
from app.db import Database, Timeouts
from app.fulfilment import clock

MAX_BODY_BYTES = 1024 * 1024

# Extensions, bound to each app in create_app().
babel = Babel()
sock = Sock()
htmx = Htmx()


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True,
                template_folder=str(Path(__file__).parent.parent / "templates"),
                static_folder=str(Path(__file__).parent.parent / "static"))
    settings = Settings.from_env(Path(app.instance_path), **(overrides or {}))
    if settings.database_url.startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        LUYUE=settings,
        # A handheld login lasts one shift (also checked against login time).
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.session_hours),
    )
    app.json.ensure_ascii = False
    # Ids in URLs are database integers (before any route is added).
    from app.web import inputs
    inputs.install_converter(app)
    app.json.sort_keys = False
    clock.configure(settings.timezone)
    timeouts = Timeouts(connect=settings.db_connect_timeout_seconds,
                        statement=settings.db_statement_timeout_seconds, pool=settings.db_pool_timeout_seconds)
    app.extensions["luyue.db"] = Database(settings.database_url, echo=settings.sql_echo, timeouts=timeouts)
    # One line per event, on stderr, through the root logger (gunicorn's too):
    # Flask's own handler would print every line a second time.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app.logger.removeHandler(default_handler)
    app.logger.setLevel(logging.INFO)

    # Security headers on every answer; cookies HttpOnly, Lax, Secure over HTTPS.
    from app.web import headers
    headers.register(app, https=settings.https, trusted_proxies=settings.trusted_proxies)

    from app.web import api, errors, openapi
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)  # no token: its own blueprint
    errors.register(app)

    # The handheld screens: badge login, Chinese and English, htmx, websockets.
    from app.web import auth
    from app.web.handheld import pick as pick_screens
    from app.web.handheld import pack as pack_screens
    from app.web.handheld import ship as ship_screens
    babel.init_app(app, default_locale="zh_CN", locale_selector=auth.locale,
                   default_translation_directories=str(Path(__file__).parent / "translations"))
    # Pings find dead tablets and keep idle proxies from closing live screens.
    from app.live import SocketReader
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25, "thread_class": SocketReader})
    sock.init_app(app)
    htmx.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pick_screens.bp)
    from app.web import lead
    app.register_blueprint(lead.bp)
    app.register_blueprint(pack_screens.bp)
    app.register_blueprint(ship_screens.bp)
    from app.web.handheld import count as count_screens
    app.register_blueprint(count_screens.bp)
    # Same-city riders and the leads' SLA report.
    from app.web import reports, rider
    app.register_blueprint(rider.bp)
    app.register_blueprint(reports.bp)
    # For load balancers: can this process reach the database?
    from app.web import health
    app.register_blueprint(health.bp)
    # Who may open which route: one table, checked after the user is loaded.
    from app.web import authorisation
    authorisation.install(app)

    # Every field checked before a view reads it (after the worker is known).
    inputs.register(app)

    from app.cli import register
    register(app)
    return app
