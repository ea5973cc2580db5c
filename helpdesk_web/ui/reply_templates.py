"""The admin's editor for the SMS reply texts: an edit is a ReplyTemplate row over the file."""
from __future__ import annotations

import jinja2
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from gateway.db.models import ReplyTemplate, utcnow
from gateway.desk import replies
from gateway.desk.users import audit
from helpdesk_web.auth import login_required
from helpdesk_web.db import get_db

bp = Blueprint("reply_templates", __name__)

EDITORS = ("admin",)
# Three SMS of text with room for logic; and well inside MariaDB's 64 KiB TEXT column.
MAX_SOURCE = 8000

# Realistic values for every variable the reply templates use, so that a trial render
# catches a typo'd variable and a text that grows past three SMS with real numbers.
SAMPLE = {
    "ticket_number": "12", "order_number": "12", "total": 51037, "amount": 51037,
    "expected": 51000, "reason": "matched", "items": [{"code": "XL25", "quantity": 2}],
    "accounts": ["BCA 1234567890 a.n. Toko Maju"], "problem": "unknown_product",
    "code": "XL25", "stock": 0, "kind": "order", "number": "12",
    "status": "awaiting_payment", "reference": "12", "name": "Budi", "modem": "modem1",
    "queued": 150, "balance": 4500, "floor": 10000, "serial": "SN12345678",
    "until": "2027-06-30", "warranty": "valid", "product": "Flashdisk 32GB",
    "state": "in_repair", "new_serial": "SN87654321",
}


def _stored(db, name: str, language: str) -> ReplyTemplate | None:
    return db.scalar(select(ReplyTemplate).where(ReplyTemplate.name == name,
                                                 ReplyTemplate.language == language))


def _known_or_404(name: str, language: str) -> None:
    if name not in replies.names() or language not in replies.LANGUAGES:
        abort(404, f"there is no reply template {name!r} in language {language!r}")


@bp.route("/templates")
@login_required(roles=EDITORS)
def index():
    db = get_db()
    stored = {(t.name, t.language): t for t in db.scalars(select(ReplyTemplate))}
    rows = []
    for name in replies.names():
        for language in replies.LANGUAGES:
            row = stored.get((name, language))
            rows.append({"name": name, "language": language, "edited": row is not None,
                         "text": row.body if row else replies.builtin_source(name, language)})
    return render_template("reply_templates/index.html", rows=rows)


@bp.route("/templates/<name>/<language>")
@login_required(roles=EDITORS)
def edit(name, language):
    _known_or_404(name, language)
    row = _stored(get_db(), name, language)
    source = row.body if row else replies.builtin_source(name, language)
    return _render_edit(name, language, source, edited=row is not None)


def _render_edit(name, language, source, *, edited, error=None, status=200):
    preview = _preview(name, language) if error is None else None
    return render_template("reply_templates/edit.html", name=name, language=language,
                           source=source, edited=edited, error=error, preview=preview,
                           builtin=replies.builtin_source(name, language),
                           sample=SAMPLE), status


def _preview(name: str, language: str) -> str | None:
    """What the customer would get now with the sample values (cut to three SMS if long)."""
    try:
        return replies.render(name, language, get_db(), **SAMPLE)
    except jinja2.TemplateError:
        return None


@bp.route("/templates/<name>/<language>", methods=("POST",))
@login_required(roles=EDITORS)
def save(name, language):
    _known_or_404(name, language)
    db = get_db()
    # A textarea sends CRLF; on a phone each \r would cost a character.
    source = request.form.get("source", "").replace("\r\n", "\n").strip()
    row = _stored(db, name, language)
    if len(source) > MAX_SOURCE:
        error = f"the template is {len(source)} characters long; at most {MAX_SOURCE} fit"
    else:
        error = replies.check_source(source, SAMPLE)
    if error is not None:
        flash(_("The template was not saved: %(error)s.", error=error), "error")
        return _render_edit(name, language, source, edited=row is not None, error=error,
                            status=400)
    old = row.body if row else None
    if row is None:
        row = ReplyTemplate(name=name, language=language)
        db.add(row)
    row.body, row.updated_at = source, utcnow()
    db.flush()
    audit(db, g.user.id, "reply_template.save", "reply_template", row.id,
          {"name": name, "language": language, "from": old, "to": source})
    db.commit()
    flash(_("Template %(name)s (%(language)s) saved.", name=name, language=language), "ok")
    return redirect(url_for("reply_templates.edit", name=name, language=language))


@bp.route("/templates/<name>/<language>/reset", methods=("POST",))
@login_required(roles=EDITORS)
def reset(name, language):
    _known_or_404(name, language)
    db = get_db()
    row = _stored(db, name, language)
    if row is not None:
        audit(db, g.user.id, "reply_template.reset", "reply_template", row.id,
              {"name": name, "language": language, "from": row.body})
        db.delete(row)
        db.commit()
    flash(_("Template %(name)s (%(language)s) is back to the built-in text.", name=name,
            language=language), "ok")
    return redirect(url_for("reply_templates.edit", name=name, language=language))
