"""SMS reply texts: Jinja2 templates, Bahasa Indonesia by default, English by choice.

The built-in texts live in gateway/templates/sms/<language>/<name>.j2; an admin's edit is
a ReplyTemplate row and wins over the file. A reply never takes more than three SMS.
"""
from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.sandbox
from sqlalchemy import select

from gateway.db.models import ReplyTemplate
from gateway.db.transaction import batch_cached
from gateway.desk.reader import format_rupiah as rupiah
from gateway.sms.encoding import part_count  # 51037 -> "Rp 51.037"

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
            return fit(_sandbox.from_string(source).render(**context).strip())
        except jinja2.TemplateError:
            pass  # a broken edit must not silence the helpdesk: the built-in text answers
    return fit(_env.get_template(f"{language}/{template}.j2").render(**context).strip())


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
    except jinja2.TemplateError as e:
        return f"the template does not work: {e}"
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
