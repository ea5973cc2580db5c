"""The CRM screens: the contact list with search and filters, one contact's details and
timeline, and the list as CSV out and in. The rules live in gateway.desk.crm."""
from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.db.models import CONTACT_TYPES, Contact, Message
from gateway.desk import broadcasts, crm, replies
from gateway.desk.outbox import OutboxError, queue_message
from gateway.desk.users import audit
from gateway.sms.phone import is_reachable
from helpdesk_web import pager
from helpdesk_web.auth import WRITERS, login_required
from helpdesk_web.bounds import MAX_ID, parse_int
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("contacts", __name__)
bp.add_app_template_filter(replies.rupiah, "rupiah")

TIMELINE_PAGE = 50
# The field names of the details form, as crm.update_contact takes them.
FORM_FIELDS = ("name", "organisation", "type", "tags", "notes")
FLAGS = ("opted_out", "blocked")


def type_names() -> dict[str, str]:
    return {"customer": _("customer"), "reseller": _("reseller"), "dealer": _("dealer")}


def _filters() -> dict:
    return {"q": request.args.get("q", "").strip()[:100],
            "type": request.args.get("type", ""),
            "tag": request.args.get("tag", "").strip()[:40],
            "group": request.args.get("group", "").strip()[:100]}


def _conditions(filters: dict) -> list:
    conditions = crm.contact_filter(filters["q"], helpdesk().config.country, filters["type"],
                                    filters["tag"])
    if filters["group"]:
        conditions += broadcasts.group_filter(filters["group"])
    return conditions


@bp.route("/contacts")
@login_required
def index():
    filters = _filters()
    db = get_db()
    found = pager.page(select(Contact).where(*_conditions(filters)), Contact.id)
    return render_template("contacts/list.html", page=found, filters=filters,
                           tags=crm.tags_of(db, [c.id for c in found.items]),
                           all_tags=crm.tag_names(db), types=CONTACT_TYPES,
                           all_groups=broadcasts.group_names(db),
                           type_names=type_names(),
                           can_write=g.user.role in WRITERS)


def _contact_or_404(db, contact_id: int) -> Contact:
    contact = db.get(Contact, contact_id)
    if contact is None:
        abort(404, _("There is no contact %(id)s.", id=contact_id))
    return contact


@bp.route("/contacts/<id:contact_id>")
@login_required
def view(contact_id):
    db = get_db()
    return _render_contact(db, _contact_or_404(db, contact_id))


def _render_contact(db, contact: Contact, form: dict | None = None, problems=None,
                    text: str = "", status: int = 200):
    try:
        timeline = crm.timeline(db, contact, TIMELINE_PAGE, request.args.get("before") or None)
    except ValueError:
        abort(400, _("This page of the timeline does not exist; open the contact again."))
    if form is None:
        form = {"name": contact.name or "", "organisation": contact.organisation or "",
                "type": contact.type, "tags": " ".join(t.name for t in contact.tags),
                "notes": contact.notes or "", "opted_out": bool(contact.opted_out),
                "blocked": bool(contact.blocked)}
    return render_template("contacts/contact.html", contact=contact, timeline=timeline,
                           form=form, problems=problems or {}, types=CONTACT_TYPES,
                           type_names=type_names(),
                           can_write=g.user.role in WRITERS, text=text,
                           reachable=is_reachable(contact.phone),
                           groups=broadcasts.groups_of(db, contact.id),
                           all_groups=broadcasts.all_groups(db)), status


@bp.route("/contacts/<id:contact_id>", methods=("POST",))
@login_required(roles=WRITERS)
def save(contact_id):
    db = get_db()
    contact = _contact_or_404(db, contact_id)
    form = {name: request.form.get(name, "") for name in FORM_FIELDS}
    form.update({name: request.form.get(name) == "1" for name in FLAGS})
    try:
        changes = crm.update_contact(db, contact, g.user.id, **form)
        db.commit()
    except crm.ContactError as e:
        db.rollback()
        flash(_("The contact was not saved: %(problems)s", problems=e), "error")
        return _render_contact(db, contact, form, e.problems, status=400)
    except IntegrityError:  # another user made the same new tag this very moment
        db.rollback()
        flash(_("The contact was not saved because someone changed it at the same time; "
                "save again."), "error")
        return _render_contact(db, contact, form, status=409)
    flash(_("Contact saved.") if changes else _("Nothing changed."), "ok")
    return redirect(url_for("contacts.view", contact_id=contact.id))


@bp.route("/contacts/<id:contact_id>/text", methods=("POST",))
@login_required(roles=WRITERS)
def send_text(contact_id):
    db = get_db()
    contact = _contact_or_404(db, contact_id)
    text = request.form.get("text", "").replace("\r\n", "\n").strip()
    if not is_reachable(contact.phone):
        flash(_("%(phone)s cannot receive texts: it is not a phone number.",
                phone=contact.phone), "error")
        return _render_contact(db, contact, text=text, status=400)
    # Through the modem the customer last wrote to, where the number knows us.
    modem = db.scalar(select(Message.modem).where(Message.number == contact.phone,
                                                  Message.direction == "in")
                      .order_by(Message.id.desc()).limit(1))
    try:
        message = queue_message(db, contact.phone, text, user_id=g.user.id,
                                contact_id=contact.id, modem=modem)
    except OutboxError as e:
        db.rollback()
        flash(_("The text was not queued: %(reason)s", reason=e), "error")
        return _render_contact(db, contact, text=text, status=400)
    audit(db, g.user.id, "contact.text", "contact", contact.id, {"message_id": message.id})
    db.commit()
    notify_queued(message.id)
    flash(_("The text is queued to be sent."), "ok")
    return redirect(url_for("contacts.view", contact_id=contact.id))


@bp.route("/contacts/groups", methods=("POST",))
@login_required(roles=WRITERS)
def create_group():
    """A new contact group (a broadcast's audience); with contact_id, that contact joins."""
    db = get_db()
    contact_id = parse_int(request.form.get("contact_id", ""), 1, MAX_ID)
    contact = db.get(Contact, contact_id) if contact_id else None
    try:
        group = broadcasts.create_group(db, request.form.get("name", "")[:200], g.user.id)
        if contact is not None:
            broadcasts.set_member(db, group.id, contact.id, True, g.user.id)
        db.commit()
    except (broadcasts.BroadcastError, IntegrityError) as e:
        db.rollback()
        reason = e if isinstance(e, broadcasts.BroadcastError) else _("that name is taken")
        flash(_("The group was not made: %(reason)s", reason=reason), "error")
    else:
        flash(_("Group %(name)s made.", name=group.name), "ok")
    if contact is not None:
        return redirect(url_for("contacts.view", contact_id=contact.id))
    return redirect(url_for("contacts.index"))


@bp.route("/contacts/<id:contact_id>/groups", methods=("POST",))
@login_required(roles=WRITERS)
def set_group(contact_id):
    """Put the contact into a group (add=GROUP_ID) or take it out (remove=GROUP_ID)."""
    db = get_db()
    contact = _contact_or_404(db, contact_id)
    member = "add" in request.form
    group_id = parse_int(request.form.get("add" if member else "remove", ""), 1, MAX_ID)
    if group_id is None:
        flash(_("Choose a group."), "error")
        return redirect(url_for("contacts.view", contact_id=contact.id))
    try:
        changed = broadcasts.set_member(db, group_id, contact.id, member, g.user.id)
        db.commit()
    except (broadcasts.BroadcastError, IntegrityError) as e:  # the group went meanwhile
        db.rollback()
        reason = e if isinstance(e, broadcasts.BroadcastError) else _(
            "someone changed them at the same time; try again")
        flash(_("The groups were not changed: %(reason)s", reason=reason), "error")
        return redirect(url_for("contacts.view", contact_id=contact.id))
    flash(_("Groups saved.") if changed else _("Nothing changed."), "ok")
    return redirect(url_for("contacts.view", contact_id=contact.id))


# An export is the whole customer list leaving the system: not for read-only accounts,
# and audited.
@bp.route("/contacts/export.csv")
@login_required(roles=WRITERS)
def export():
    filters = _filters()
    db = get_db()
    audit(db, g.user.id, "contact.export", "contact", None,
          {k: v for k, v in filters.items() if v})
    db.commit()
    conditions = _conditions(filters)
    # The rows are read after this view has returned and its request session is closed:
    # the stream has a session of its own, closed when the last row is out (or the
    # client went away).
    session = helpdesk().sessionmaker()

    def rows():
        try:
            yield from crm.export_csv(session, conditions)
        finally:
            session.close()
    return Response(rows(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="contacts.csv"'})


@bp.route("/contacts/import")
@login_required(roles=WRITERS)
def import_form():
    return render_template("contacts/import.html", result=None, problems=None)


@bp.route("/contacts/import", methods=("POST",))
@login_required(roles=WRITERS)
def import_file():
    db = get_db()
    upload = request.files.get("file")
    data = upload.read() if upload else b""
    if not data.strip():
        flash(_("Choose a CSV file to import."), "error")
        return render_template("contacts/import.html", result=None, problems=None), 400
    try:
        result = crm.import_csv(db, data, helpdesk().config.country, g.user.id)
        db.commit()
    except crm.CsvRejected as e:
        db.rollback()
        return render_template("contacts/import.html", result=None, problems=e.problems), 400
    except IntegrityError:  # the same new number or tag written by someone else meanwhile
        db.rollback()
        problems = [_("Someone added the same contacts or tags at the same time; nothing "
                      "was imported. Upload the file again.")]
        return render_template("contacts/import.html", result=None, problems=problems), 409
    return render_template("contacts/import.html", result=result, problems=None)
