"""The UI in Bahasa Indonesia or English, per user, with dates in the shop's time zone.

Messages are written in English in the code and the templates (`_("...")`); the
catalogue in translations/ gives their Indonesian. Each user's choice is kept on the user
(`/account`); who has not chosen gets `[web] language`.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import flask_babel
from flask import g
from flask_babel import Babel, get_translations

from .db import helpdesk

LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
TRANSLATIONS = Path(__file__).parent / "translations"


def current_language() -> str:
    user = g.get("user")
    if user is not None and user.language in LANGUAGES:
        return user.language
    return helpdesk().config.web_language


def _timezone() -> str:
    return helpdesk().config.timezone


def when(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A naive UTC time from the database, in the shop's time zone, written in digits
    (the same in both languages). Not Flask-Babel's format_datetime: it looks up the
    locale and the zone again for every date, a tenth of a ticket page's time."""
    if value is None:
        return ""
    zone = ZoneInfo(helpdesk().config.timezone)  # ZoneInfo keeps one object per name
    return value.replace(tzinfo=dt.UTC).astimezone(zone).strftime(fmt)


def _catalogue():
    """This request's translations, looked up once. Flask-Babel's own lookup walks its
    contexts for each string: over a thousand walks on a ticket page, a tenth of its time."""
    catalogue = g.get("_catalogue")
    if catalogue is None:
        catalogue = g._catalogue = get_translations()
    return catalogue


def label(value: str) -> str:
    """One word of a list (a status, a state) in the user's language: for pages that
    show hundreds of them."""
    return _catalogue().ugettext(value)


def refresh() -> None:
    """After the user changed language: this request's strings in the new one."""
    flask_babel.refresh()
    g.pop("_catalogue", None)


def init(app) -> None:
    Babel(app, locale_selector=current_language, timezone_selector=_timezone,
          default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _catalogue().ugettext(s),
        ngettext=lambda s, p, n: _catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: _catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalogue().unpgettext(c, s, p, n),
        newstyle=True)
    app.jinja_env.filters["when"] = when
    app.jinja_env.globals["current_language"] = current_language
