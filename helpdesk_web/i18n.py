"""The UI in Bahasa Indonesia or English, per user, with dates in the shop's time zone.

Messages are written in English in the code and the templates (`_("...")`); the
catalogue in translations/ gives their Indonesian. Each user's choice is kept on the user
(`/account`); who has not chosen gets `[web] language`.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import g
from flask_babel import Babel, format_datetime

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


def when(value: dt.datetime | None, pattern: str = "yyyy-MM-dd HH:mm") -> str:
    """A naive UTC time from the database, in the shop's time zone."""
    if value is None:
        return ""
    return format_datetime(value.replace(tzinfo=dt.UTC), pattern)


def init(app) -> None:
    Babel(app, locale_selector=current_language, timezone_selector=_timezone,
          default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.filters["when"] = when
    app.jinja_env.globals["current_language"] = current_language
