"""The message folders as Kalkun users know them: inbox (carriers included, never
answered), sent, outbox with retries, and a new text to a number or a contact."""
from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import CSRF_FIELD, PASSWORD
from helpers import page
from sqlalchemy import select

from gateway.db.models import AuditLog, Contact, Message, utcnow
from gateway.desk import outbox


@pytest.fixture
def config(config):
    """The UI in English here, whatever the catalogue holds: assertions read English."""
    return dataclasses.replace(config, web_language="en")



@pytest.fixture
def text(db):
    """Store an SMS; outbound ones take their status and outbox fields as keywords."""
    def add(body="Halo", number="+6281234567890", direction="out", status="sent", **fields):
        message = Message(direction=direction, number=number, text=body, status=status,
                          created_at=utcnow(), **fields)
        db.add(message)
        db.commit()
        return message
    return add


def shown(html: str, messages) -> list[int]:
    found = [(html.index(f'id="m{m.id}"'), m.id) for m in messages if f'id="m{m.id}"' in html]
    return [message_id for _, message_id in sorted(found)]


def audits(db, action):
    db.expire_all()
    return db.scalars(select(AuditLog).where(AuditLog.action == action)).all()


# --- folders ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/messages/sent", "/messages/outbox", "/messages/new"])
def test_folders_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.location


def test_texts_from_carriers_and_short_codes_are_in_the_inbox_and_never_answered(
        client, auth, text):
    carrier = text("Sisa pulsa Anda Rp 5.000", number="TELKOMSEL", direction="in",
                   status="received")
    short = text("Kode OTP 1234", number="3636", direction="in", status="received")
    customer = text("Halo min", direction="in", status="received")
    auth.login()
    html = page(client.get("/messages/inbox"))
    assert shown(html, [carrier, short, customer]) == [customer.id, short.id, carrier.id]
    assert html.count("carrier or short code: cannot be answered") == 2
    # only the customer, a text without a ticket, gets an Answer link
    assert html.count(">Answer</a>") == 1 and "/messages/new?to=%2B6281234567890" in html
    for sender in ("TELKOMSEL", "3636"):
        response = auth.post("/messages/new", {"to": sender, "text": "Terima kasih"})
        assert response.status_code == 400 and "is neither a phone number" in page(response)


def test_sent_folder_lists_sent_and_delivered_newest_first(client, auth, text):
    sent = text("Terkirim", modem="modem1", sent_at=utcnow())
    delivered = text("Sampai", status="delivered", delivered_at=utcnow())
    waiting = text("Antre", status="queued")
    inbound = text("Masuk", direction="in", status="received")
    auth.login("vera", "viewer")
    html = page(client.get("/messages/sent"))
    assert shown(html, [sent, delivered, waiting, inbound]) == [delivered.id, sent.id]
    assert "modem1" in html and "delivered" in html


def test_outbox_shows_state_attempts_last_error_and_modem(client, auth, text):
    rows = {status: text(f"teks {status}", status=status, attempts=3, modem="modem1",
                         last_error=f"error <{status}>")
            for status in ("queued", "sending", "failed", "unknown")}
    done = text("selesai", status="sent")
    auth.login()
    html = page(client.get("/messages/outbox"))
    assert shown(html, [*rows.values(), done]) == [r.id for r in reversed(rows.values())]
    assert "error &lt;failed&gt;" in html and ">3</td>" in html and "modem1" in html
    # the retry button only on failed and unknown, with the tick box only on unknown
    assert html.count(">Send again</button>") == 2 and html.count('name="sent_maybe_ok"') == 1
    only_failed = page(client.get("/messages/outbox?status=failed"))
    assert shown(only_failed, rows.values()) == [rows["failed"].id]


def test_hostile_texts_and_names_are_escaped_in_every_folder(client, auth, db, text):
    hostile = '<script>alert("x")</script>'
    contact = Contact(phone="+6281234567890", name=hostile)
    db.add(contact)
    db.commit()
    for direction, status in (("in", "received"), ("out", "sent"), ("out", "failed")):
        text(hostile, direction=direction, status=status, contact_id=contact.id,
             last_error=hostile if status == "failed" else None)
    auth.login()
    for path in ("/messages/inbox", "/messages/sent", "/messages/outbox",
                 f"/messages/new?to={hostile}"):
        html = page(client.get(path))
        assert "<script>alert" not in html and "&lt;script&gt;alert" in html, path


@pytest.mark.parametrize("role", ["admin", "supervisor", "operator", "sales", "viewer"])
def test_every_role_reads_every_folder(client, auth, role):
    auth.login("someone", role)
    for path in ("/messages/inbox", "/messages/sent", "/messages/outbox"):
        assert client.get(path).status_code == 200


def test_folders_are_paged(client, auth, text):
    texts = [text(f"teks {i}") for i in range(5)]
    auth.login()
    html = page(client.get("/messages/sent?limit=2"))
    assert shown(html, texts) == [texts[4].id, texts[3].id]
    assert f'href="/messages/sent?limit=2&amp;before={texts[3].id}"' in html
    older = page(client.get(f"/messages/sent?limit=2&before={texts[3].id}"))
    assert shown(older, texts) == [texts[2].id, texts[1].id]


# --- compose ----------------------------------------------------------------------------

def test_a_new_text_to_a_number_in_any_form_is_queued_and_audited(client, auth, db, queued):
    auth.login("ani", "operator")
    response = auth.post("/messages/new", {"to": "0812-3456-7890", "text": "Halo\r\nBudi"})
    assert response.status_code == 302
    db.expire_all()
    message = db.scalar(select(Message).where(Message.direction == "out"))
    assert (message.number, message.text, message.status) == ("+6281234567890", "Halo\nBudi",
                                                              "queued")
    assert response.location == f"/messages/outbox#m{message.id}"
    assert queued == [message.id]
    [row] = audits(db, "message.send")
    assert (row.target_id, json.loads(row.detail)) == (message.id, {"to": "+6281234567890"})


def test_a_new_text_to_a_contact_by_name_goes_through_the_modem_they_wrote_to(
        client, auth, db, text):
    contact = Contact(phone="+6285711112222", name="Budi Santoso")
    db.add(contact)
    db.commit()
    text("Halo", number=contact.phone, direction="in", status="received", modem="modem2")
    auth.login("sari", "sales")
    form = page(client.get(f"/messages/new?contact={contact.id}"))
    assert 'value="+6285711112222"' in form and "Contact: Budi Santoso" in form
    assert auth.post("/messages/new", {"to": "budi santoso", "text": "Pesanan siap"}) \
        .status_code == 302
    db.expire_all()
    message = db.scalar(select(Message).where(Message.direction == "out"))
    assert (message.number, message.contact_id, message.modem) == (contact.phone, contact.id,
                                                                   "modem2")


@pytest.mark.parametrize("to,text,sentence", [
    ("", "Halo", "write a phone number or a contact&#39;s name"),
    ("Nobody Here", "Halo", "is neither a phone number"),
    ("0812 3456 7890", "   ", "the text is empty"),
    ("0812 3456 7890", "x" * 1531, "at most 1530 fit"),
])
def test_a_bad_new_text_is_refused_with_a_sentence(client, auth, db, to, text, sentence):
    auth.login()
    response = auth.post("/messages/new", {"to": to, "text": text})
    assert response.status_code == 400 and sentence in page(response)
    db.expire_all()
    assert db.scalar(select(Message)) is None


def test_two_contacts_of_one_name_ask_for_the_number(client, auth, db):
    db.add_all([Contact(phone="+6281111111111", name="Budi"),
                Contact(phone="+6282222222222", name="Budi")])
    db.commit()
    auth.login()
    response = auth.post("/messages/new", {"to": "Budi", "text": "Halo"})
    assert response.status_code == 400 and "several contacts are called Budi" in page(response)


def test_an_opted_out_contact_is_refused_clearly(client, auth, db, queued):
    db.add(Contact(phone="+6281234567890", name="Budi", opted_out=True))
    db.commit()
    auth.login()
    response = auth.post("/messages/new", {"to": "081234567890", "text": "Promo!"})
    html = page(response)
    assert response.status_code == 400
    assert "+6281234567890 asked for no more texts (STOP); nothing was sent" in html
    assert 'value="081234567890"' in html and "Promo!" in html  # kept to correct
    db.expire_all()
    assert db.scalar(select(Message)) is None and queued == []


def test_viewers_cannot_write_and_no_token_no_text(client, auth, db):
    auth.login("vera", "viewer")
    assert client.get("/messages/new").status_code == 403
    assert auth.post("/messages/new", {"to": "081234567890", "text": "Halo"}).status_code == 403
    assert client.post("/messages/new", data={"to": "081234567890", "text": "Halo"}) \
        .status_code == 400  # no CSRF token
    db.expire_all()
    assert db.scalar(select(Message)) is None


# --- retry ------------------------------------------------------------------------------

def test_a_failed_text_is_requeued_once_and_audited(client, auth, db, text, queued):
    failed = text("Gagal", status="failed", attempts=5, last_error="ERR_TIMEOUT",
                  claimed_by="host1")
    auth.login("ani", "operator")
    response = auth.post(f"/messages/{failed.id}/retry", {})
    assert response.status_code == 302 and response.location.endswith(f"#m{failed.id}")
    db.expire_all()
    again = db.get(Message, failed.id)
    assert (again.status, again.attempts, again.claimed_by, again.next_attempt_at) == (
        "queued", 0, None, None)
    assert queued == [failed.id]
    [row] = audits(db, "message.retry")
    assert json.loads(row.detail) == {"from": "failed", "last_error": "ERR_TIMEOUT",
                                      "to": "+6281234567890"}
    # a double click finds it queued already: refused, nothing more written
    html = page(auth.post(f"/messages/{failed.id}/retry", {}, follow_redirects=True))
    assert "The text was not sent again" in html and "is queued" in html
    assert len(audits(db, "message.retry")) == 1 and queued == [failed.id]


def test_an_unknown_text_is_requeued_only_when_the_operator_accepts_a_second_copy(
        client, auth, db, text):
    unknown = text("Mungkin terkirim", status="unknown")
    auth.login("ani", "operator")
    html = page(auth.post(f"/messages/{unknown.id}/retry", {}, follow_redirects=True))
    assert "may have been sent already" in html
    db.expire_all()
    assert db.get(Message, unknown.id).status == "unknown" and audits(db, "message.retry") == []
    auth.post(f"/messages/{unknown.id}/retry", {"sent_maybe_ok": "1"})
    db.expire_all()
    assert db.get(Message, unknown.id).status == "queued"
    assert json.loads(audits(db, "message.retry")[0].detail)["from"] == "unknown"


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "delivered"])
def test_only_failed_or_unknown_can_be_retried(client, auth, db, text, status):
    message = text(status=status)
    auth.login()
    html = page(auth.post(f"/messages/{message.id}/retry", {"sent_maybe_ok": "1"},
                          follow_redirects=True))
    assert f"is {status}; only a failed or unknown text can be sent again" in html
    db.expire_all()
    assert db.get(Message, message.id).status == status


def test_retry_of_an_inbound_or_missing_text_is_404(client, auth, text):
    inbound = text(direction="in", status="received")
    auth.login()
    assert auth.post(f"/messages/{inbound.id}/retry", {}).status_code == 404
    assert auth.post("/messages/999999/retry", {}).status_code == 404


@pytest.mark.parametrize("role", ["sales", "viewer"])
def test_only_operators_supervisors_and_admins_retry(client, auth, db, text, role):
    failed = text(status="failed")
    auth.login("someone", role)
    assert ">Send again</button>" not in page(client.get("/messages/outbox"))
    assert auth.post(f"/messages/{failed.id}/retry", {}).status_code == 403
    db.expire_all()
    assert db.get(Message, failed.id).status == "failed"


def test_requeue_is_conditional_on_the_status_seen(db, text):
    """Two operators at once: the second UPDATE matches no row and is refused."""
    failed = text(status="failed")
    first = outbox.requeue(db, failed.id)
    assert (first.message.status, first.previous) == ("queued", "failed")
    with pytest.raises(outbox.RetryRefused, match="is queued"):
        outbox.requeue(db, failed.id)
    db.rollback()


def test_simultaneous_retries_requeue_once(app, db, make_user, text):
    """Two browsers click "send again" on the same failed text at the same moment."""
    import threading

    failed = text(status="failed")
    make_user("ani", "operator")
    clients = [app.test_client() for _ in range(2)]
    for c in clients:
        form = page(c.get("/login"))
        c.post("/login", data={"name": "ani", "password": PASSWORD,
                               "csrf_token": CSRF_FIELD.search(form).group(1)})
    tokens = [CSRF_FIELD.search(page(c.get("/messages/outbox"))).group(1) for c in clients]
    start = threading.Barrier(2)
    codes = []

    def click(c, token):
        start.wait()
        codes.append(c.post(f"/messages/{failed.id}/retry", data={"csrf_token": token})
                     .status_code)

    threads = [threading.Thread(target=click, args=pair) for pair in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [302, 302]
    assert len(audits(db, "message.retry")) == 1


def test_the_outbox_is_read_by_status_not_by_walking_every_text(client, auth, engine, text):
    """Among a million texts sent, the outbox's few are found through the status index."""
    from sqlalchemy import event

    seen = []

    def before(_conn, _cursor, statement, parameters, *_args):
        seen.append((statement, parameters))

    with engine.begin() as conn:  # enough texts sent that walking them would show
        conn.execute(Message.__table__.insert(), [
            {"direction": "out", "number": "+6281234567890", "text": "lama", "status": "sent",
             "attempts": 1, "created_at": utcnow()} for _ in range(300)])
    text(status="failed")
    auth.login()
    event.listen(engine, "before_cursor_execute", before)
    try:
        assert client.get("/messages/outbox").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", before)
    [(statement, parameters)] = [(s, p) for s, p in seen
                                 if "FROM messages" in s and "messages.status IN" in s]
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters))
            assert "ix_messages_direction_status_next_attempt_at" in plan, plan
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE messages")  # as autovacuum would: 300 are sent
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # 300 rows read whole else
            plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement,
                                                               parameters))
            assert "ix_messages_direction_status_next_attempt_at" in plan, plan
        else:
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).mappings().all()
            assert rows[0]["key"] == "ix_messages_direction_status_next_attempt_at", rows


def test_the_outbox_is_paged_newest_first(client, auth, text):
    texts = [text(f"teks {i}", status="failed") for i in range(5)]
    auth.login()
    html = page(client.get("/messages/outbox?limit=2"))
    assert shown(html, texts) == [texts[4].id, texts[3].id]
    older = page(client.get(f"/messages/outbox?limit=2&before={texts[3].id}"))
    assert shown(older, texts) == [texts[2].id, texts[1].id]
    newer = page(client.get(f"/messages/outbox?limit=2&after={texts[1].id}"))
    assert shown(newer, texts) == [texts[3].id, texts[2].id]
