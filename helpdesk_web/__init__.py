"""The operator UI and the JSON API: a Flask app the daemon mounts in Twisted.

The daemon builds the configuration and the sessionmaker; this package only serves
requests, one database session per request.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from gateway.config import Config
from helpdesk_web import bounds, pager


@dataclass(frozen=True)
class Helpdesk:
    """What the views need from the daemon, kept in app.extensions['helpdesk']."""
    config: Config
    sessionmaker: Callable
    on_queued: Callable[[int], None] | None = None
    # click_to_call(user_id, number) -> call id; None without an [ami] section.
    click_to_call: Callable[[int, str], int] | None = None


def create_app(config: Config, sessionmaker, *, secret_key: bytes, on_queued=None,
               click_to_call=None, test_config=None) -> Flask:
    """Build the app; `on_queued(message_id)` is called after a reply is committed."""
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, a whole shift
        MAX_CONTENT_LENGTH=bounds.MAX_BODY,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["helpdesk"] = Helpdesk(config, sessionmaker, on_queued, click_to_call)
    app.json.sort_keys = False  # keep the contract's field order, easier to read

    from helpdesk_web import auth, db, errors, i18n, proxy
    from helpdesk_web.api import metrics
    from helpdesk_web.api import v1 as api
    from helpdesk_web.ui import (
        account,
        admin,
        broadcasts,
        canned,
        contacts,
        dashboard,
        inbox,
        modems,
        reply_templates,
        reports,
        shop,
        tickets,
    )

    # Before the blueprints: their routes are compiled against the converters.
    app.url_map.converters["id"] = bounds.IdConverter
    app.before_request(bounds.refuse_nul)
    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)  # the API authenticates with Bearer tokens, not cookies
    app.teardown_appcontext(db.close_db)
    i18n.init(app)
    app.jinja_env.globals["page_url"] = pager.page_url
    for blueprint in (auth, dashboard, tickets, contacts, canned, shop, reply_templates, inbox,
                      modems, admin, account, broadcasts, reports, api, metrics):
        app.register_blueprint(blueprint.bp)
    errors.register(app)
    app.after_request(_security_headers)
    # Behind a proxy: its X-Forwarded-* only from [web] trusted_proxies (docs/scaling.md).
    app.session_interface = proxy.SessionInterface()
    app.wsgi_app = proxy.TrustedProxies(app.wsgi_app, config.trusted_proxies)
    return app


def _security_headers(response):
    # Defence in depth behind autoescaping: no script but our own file may run, and no
    # other site may frame the UI to trick a click.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
