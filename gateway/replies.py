"""SMS reply texts: Jinja2 templates, Bahasa Indonesia by default, English by choice.

The built-in texts live in gateway/templates/sms/<language>/<name>.j2; an admin's edit is
a ReplyTemplate row and wins over the file.
"""
from __future__ import annotations

from pathlib import Path

import jinja2
from sqlalchemy import select

from gateway.db.models import ReplyTemplate

TEMPLATES = Path(__file__).with_name("templates") / "sms"
LANGUAGES = ("id", "en")

# Plain text, not HTML: nothing to escape, and a missing variable is a bug, not a blank.
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                          autoescape=False, undefined=jinja2.StrictUndefined,
                          keep_trailing_newline=False)


def render(name: str, language: str, session=None, **context) -> str:
    """The reply text `name` in `language`, an admin's stored edit first if there is one."""
    if language not in LANGUAGES:
        language = "id"
    source = None
    if session is not None:
        source = session.scalar(select(ReplyTemplate.body).where(
            ReplyTemplate.name == name, ReplyTemplate.language == language))
    template = (_env.from_string(source) if source is not None
                else _env.get_template(f"{language}/{name}.j2"))
    return template.render(**context).strip()
