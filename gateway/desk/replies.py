"""SMS reply texts: Jinja2 templates, Bahasa Indonesia by default, English by choice.

The built-in texts live in gateway/templates/sms/<language>/<name>.j2; an admin's edit is
a ReplyTemplate row and wins over the file. A reply never takes more than three SMS.
"""
from __future__ import annotations

import logging
from pathlib import Path

import jinja2
import jinja2.sandbox
from sqlalchemy import select

from gateway.db.models import ReplyTemplate
from gateway.db.transaction import batch_cached
from gateway.desk.reader import format_rupiah as rupiah  # 51037 -> "Rp 51.037"
from gateway.sms.encoding import part_count

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates") / "sms"
LANGUAGES = ("id", "en")
MAX_PARTS = 3


# Plain text, not HTML: nothing to escape, and a missing variable is a bug, not a blank.
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                          autoescape=False, undefined=jinja2.StrictUndefined,
                          keep_trailing_newline=False)
_env.filters["rupiah"] = rupiah
# An admin's edited template runs sandboxed: it may format, never reach into Python.
_sandbox = jinja2.sandbox.SandboxedEnvironment(autoescape=False,
                                               undefined=jinja2.StrictUndefined)
_sandbox.filters["rupiah"] = rupiah


def names() -> list[str]:
    """Every built-in reply, for the admin's template editor."""
    return sorted(p.stem for p in (TEMPLATES / "id").glob("*.j2"))


def builtin_source(name: str, language: str) -> str:
    return (TEMPLATES / language / f"{name}.j2").read_text(encoding="utf-8").strip()


def render(template: str, language: str, session=None, /, **context) -> str:
    """The reply text `template` in `language`, an admin's stored edit first if any."""
    if language not in LANGUAGES:
        language = "id"
    source = _overrides(session).get((template, language)) if session is not None else None
    if source is not None:
        try:
            text = _sandbox.from_string(source).render(**context).strip()
            if text:
                return fit(text)
            raise ValueError("it renders an empty text")
        except Exception as e:
            # Whatever an admin's edit does (a syntax error, 1/0, a missing field), it
            # must not silence the helpdesk: the built-in text answers.
            _broken_edit(template, language, source, e)
    return fit(_env.get_template(f"{language}/{template}.j2").render(**context).strip())


_told: set[tuple[str, str, int]] = set()  # broken edits already logged


def _broken_edit(template: str, language: str, source: str, error: Exception) -> None:
    """Log a broken edit once per version of its text, not once per reply."""
    key = (template, language, hash(source))
    if key in _told:
        return
    _told.add(key)
    log.error("reply template %s (%s) as edited by an admin fails (%s: %s); the built-in "
              "text is sent instead until it is fixed on the Templates page", template,
              language, type(error).__name__, error)


def _overrides(session) -> dict:
    """Admins' edits, by (name, language)."""
    def load():
        rows = session.execute(select(ReplyTemplate.name, ReplyTemplate.language,
                                      ReplyTemplate.body))
        return {(name, language): body for name, language, body in rows}
    return batch_cached(session, "reply_overrides", load)


def check_source(source: str, sample: dict) -> str | None:
    """Why an admin's template cannot be saved, or None: syntax, and a trial render."""
    try:
        text = _sandbox.from_string(source).render(**sample).strip()
    except Exception as e:  # 1/0 or a bad filter argument fails as surely as bad syntax
        return f"the template does not work: {type(e).__name__}: {e}"
    if not text:
        return "the template renders an empty text"
    if parts(text) > MAX_PARTS:
        return f"the text takes {parts(text)} SMS; at most {MAX_PARTS} are allowed"
    return None


def parts(text: str) -> int:
    return part_count(text)


def fit(text: str) -> str:
    """Cut a text to what fits in MAX_PARTS SMS, marked with an ellipsis."""
    if parts(text) <= MAX_PARTS:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that still fits, with its ellipsis
        middle = (low + high + 1) // 2
        if parts(text[:middle].rstrip() + "…") <= MAX_PARTS:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…"
