"""Every route of the app, walked with no login and with each role, against ACCESS below.

The walk reads app.url_map, so a route added anywhere is walked too; a route missing from
ACCESS fails the test and says where to add it. Each `<id:...>` is filled with a real id
(see SAMPLES) and with one that does not exist. Nothing may answer 500.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from gateway.db import models
from gateway.db.models import ApiToken, Message, Order, Payment, Product, User
from gateway.desk import users
from helpdesk_web.bounds import MAX_ID

ROLES = users.ROLES
EVERYONE = ROLES  # any logged-in user
WRITERS = ("admin", "supervisor", "operator", "sales")  # all but the viewer
HANDLERS = ("admin", "supervisor", "operator")
SELLERS = ("admin", "supervisor", "sales")
MANAGERS = ("admin", "supervisor")
ADMIN = ("admin",)
PUBLIC = "public"  # answers without a login (and to everyone)
# The API with a user's token: who may call it; an integration's token (no user) may all.
API_WRITERS = WRITERS
API_DECIDERS = ("admin", "sales")

# (method, rule) -> the roles that may use it, or PUBLIC. Add each new route here.
ACCESS = {
    ("GET", "/static/<path:filename>"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/v1/health"): PUBLIC,
    # dashboard, queue, tickets
    ("GET", "/"): EVERYONE,
    ("GET", "/dashboard.json"): EVERYONE,
    ("GET", "/tickets"): EVERYONE,
    ("GET", "/tickets/<id:ticket_id>"): EVERYONE,
    ("POST", "/tickets/assign"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/reply"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/note"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/claim"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/assign"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/priority"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/merge"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/call"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/status"): WRITERS,
    ("POST", "/tickets/<id:ticket_id>/warranty"): HANDLERS,
    # contacts
    ("GET", "/contacts"): EVERYONE,
    ("GET", "/contacts/<id:contact_id>"): EVERYONE,
    ("POST", "/contacts/<id:contact_id>"): WRITERS,
    ("POST", "/contacts/<id:contact_id>/text"): WRITERS,
    ("GET", "/contacts/export.csv"): WRITERS,
    ("GET", "/contacts/import"): WRITERS,
    ("POST", "/contacts/import"): WRITERS,
    ("POST", "/contacts/groups"): WRITERS,
    ("POST", "/contacts/<id:contact_id>/groups"): WRITERS,
    # broadcasts
    ("GET", "/broadcasts"): EVERYONE,
    ("GET", "/reports"): SELLERS,  # sales see only the sales and payment reports
    ("GET", "/reports/export"): SELLERS,
    ("POST", "/broadcasts"): SELLERS,
    ("POST", "/broadcasts/preview"): SELLERS,
    ("GET", "/broadcasts/<id:broadcast_id>"): EVERYONE,
    ("POST", "/broadcasts/<id:broadcast_id>/pause"): SELLERS,
    ("POST", "/broadcasts/<id:broadcast_id>/resume"): SELLERS,
    ("POST", "/broadcasts/<id:broadcast_id>/cancel"): SELLERS,
    ("POST", "/api/v1/broadcasts"): SELLERS,
    ("GET", "/api/v1/broadcasts/<id:broadcast_id>"): EVERYONE,
    ("POST", "/api/v1/broadcasts/<id:broadcast_id>/pause"): SELLERS,
    ("POST", "/api/v1/broadcasts/<id:broadcast_id>/resume"): SELLERS,
    ("POST", "/api/v1/broadcasts/<id:broadcast_id>/cancel"): SELLERS,
    # messages
    ("GET", "/messages/inbox"): EVERYONE,
    ("GET", "/messages/sent"): EVERYONE,
    ("GET", "/messages/outbox"): EVERYONE,
    ("GET", "/messages/new"): WRITERS,
    ("POST", "/messages/new"): WRITERS,
    ("POST", "/messages/<id:message_id>/handled"): HANDLERS,
    ("POST", "/messages/<id:message_id>/retry"): HANDLERS,
    # shop
    ("GET", "/payments"): EVERYONE,
    ("POST", "/payments/<id:payment_id>/confirm"): SELLERS,
    ("POST", "/payments/<id:payment_id>/reject"): SELLERS,
    ("POST", "/payments/<id:payment_id>/match"): SELLERS,
    ("POST", "/payments/bank"): SELLERS,
    ("POST", "/payments/bank/confirm"): SELLERS,
    ("GET", "/orders"): EVERYONE,
    ("GET", "/orders/<id:order_id>"): EVERYONE,
    ("POST", "/orders/<id:order_id>/serials"): ("admin", "sales"),
    ("POST", "/orders/serials"): ("admin", "sales"),
    ("GET", "/products"): EVERYONE,
    ("POST", "/products"): MANAGERS,
    ("POST", "/products/<id:product_id>/activate"): MANAGERS,
    ("POST", "/products/<id:product_id>/deactivate"): MANAGERS,
    ("GET", "/modems"): EVERYONE,
    # templates, canned answers, SLA
    ("GET", "/templates"): ADMIN,
    ("GET", "/templates/<name>/<language>"): ADMIN,
    ("POST", "/templates/<name>/<language>"): ADMIN,
    ("POST", "/templates/<name>/<language>/reset"): ADMIN,
    ("GET", "/canned"): MANAGERS,
    ("POST", "/canned"): MANAGERS,
    ("POST", "/canned/<id:canned_id>/delete"): MANAGERS,
    ("GET", "/sla"): ADMIN,
    ("POST", "/sla"): ADMIN,
    # users, tokens, audit, account
    ("GET", "/users"): ADMIN,
    ("POST", "/users"): ADMIN,
    ("POST", "/users/<id:user_id>/active"): ADMIN,
    ("POST", "/users/<id:user_id>/password"): ADMIN,
    ("POST", "/users/<id:user_id>/role"): ADMIN,
    ("GET", "/users/tokens"): ADMIN,
    ("POST", "/users/tokens"): ADMIN,
    ("POST", "/users/tokens/<id:token_id>/revoke"): ADMIN,
    ("GET", "/audit"): MANAGERS,
    ("GET", "/account"): EVERYONE,
    ("POST", "/account/password"): EVERYONE,
    ("POST", "/account/language"): EVERYONE,
    # the JSON API (Bearer tokens)
    ("GET", "/api/v1/messages"): EVERYONE,
    ("POST", "/api/v1/messages"): API_WRITERS,
    ("GET", "/api/v1/messages/<id:message_id>"): EVERYONE,
    ("GET", "/api/v1/tickets"): EVERYONE,
    ("GET", "/api/v1/tickets/<id:ticket_id>"): EVERYONE,
    ("PATCH", "/api/v1/tickets/<id:ticket_id>"): API_WRITERS,
    ("GET", "/api/v1/contacts"): EVERYONE,
    ("GET", "/api/v1/contacts/<id:contact_id>"): EVERYONE,
    ("GET", "/api/v1/orders"): EVERYONE,
    ("GET", "/api/v1/payments"): EVERYONE,
    ("GET", "/api/v1/calls"): EVERYONE,
    ("GET", "/api/v1/modems"): EVERYONE,
    ("POST", "/api/v1/payments/<id:payment_id>/confirm"): API_DECIDERS,
    ("POST", "/api/v1/payments/<id:payment_id>/reject"): API_DECIDERS,
}

# Values for path parameters that are not ids.
TEXT_PARAMS = {"filename": "style.css", "name": "ack_new_ticket", "language": "id"}


def _world(db, make_ticket) -> dict[str, int]:
    """One real row for each kind of `<id:...>` parameter, by parameter name."""
    ticket = make_ticket()
    product = Product(code="KP01", name="Kopi", price=25_000, stock=10)
    order = Order(contact_id=ticket.contact_id, total=50_012)
    db.add_all([product, order])
    db.flush()
    payment = Payment(contact_id=ticket.contact_id, amount=50_012, order_id=order.id)
    db.add(payment)
    target = users.create_user(db, "target", "operator", "target-password")
    users.create_token(db, "target-token", "target")
    db.flush()
    samples = {"ticket_id": ticket.id, "contact_id": ticket.contact_id,
               "message_id": db.scalar(select(Message.id).where(Message.ticket_id == ticket.id)),
               "product_id": product.id, "order_id": order.id, "payment_id": payment.id,
               "user_id": target.id,
               "token_id": db.scalar(select(ApiToken.id).where(ApiToken.name == "target-token"))}
    broadcast = models.Broadcast(text="Promo", audience_kind="numbers", audience="1 numbers",
                                 status="running", total=1)
    db.add(broadcast)
    db.flush()
    samples["broadcast_id"] = broadcast.id
    if hasattr(models, "CannedResponse"):
        canned = models.CannedResponse(title="Salam", body="Terima kasih")
        db.add(canned)
        db.flush()
        samples["canned_id"] = canned.id
    db.commit()
    return samples


PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _urls(rule, samples) -> list[tuple[str, bool]]:
    """The rule's URLs to try, each with whether it names a row that exists."""
    names = [(conv, name) for conv, name in PARAM.findall(rule.rule)]
    for conv, name in names:
        if conv == "id":
            assert name in samples, (
                f"{rule.rule}: no sample row for <id:{name}>; add one to _world() in "
                f"tests/web/test_roles.py")
        else:
            assert name in TEXT_PARAMS, (
                f"{rule.rule}: no value for <{name}>; add one to TEXT_PARAMS in "
                f"tests/web/test_roles.py")

    def fill(real: bool) -> str:
        def one(match):
            conv, name = match.groups()
            if conv == "id":
                return str(samples[name] if real else MAX_ID)
            return TEXT_PARAMS[name]
        return PARAM.sub(one, rule.rule)

    has_id = any(conv == "id" for conv, _ in names)
    return [(fill(True), True)] + ([(fill(False), False)] if has_id else [])


def _routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def test_every_route_is_in_the_table(app):
    missing = [f'    ("{m}", "{r.rule}"): <roles>,' for m, r in _routes(app)
               if (m, r.rule) not in ACCESS]
    assert not missing, ("routes without an entry in ACCESS (tests/web/test_roles.py): add "
                         "each with the roles that may use it, or PUBLIC:\n"
                         + "\n".join(missing))
    gone = [key for key in ACCESS if key not in {(m, r.rule) for m, r in _routes(app)}]
    assert not gone, f"ACCESS lists routes the app no longer has: {gone}"


@pytest.fixture
def walk_app(make_app):
    # The walk is about roles: CSRF would answer every POST before the role check does.
    # An error becomes the 500 a user would see, so one walk lists every failing route.
    return make_app(TESTING=True, WTF_CSRF_ENABLED=False, PROPAGATE_EXCEPTIONS=False)


def _send(client, method, url, headers=None):
    kwargs = {"headers": headers or {}}
    if method in ("POST", "PATCH"):
        kwargs["json" if url.startswith("/api/") else "data"] = {}
    response = client.open(url, method=method, **kwargs)
    response.close()  # a stream (server-sent events) is not read to its end
    return response


def _known_routes(app):
    return [(m, r) for m, r in _routes(app) if (m, r.rule) in ACCESS]


def test_without_a_login_pages_send_to_login_and_the_api_says_401(walk_app, db, make_ticket):
    samples = _world(db, make_ticket)
    client = walk_app.test_client()
    wrong = []
    for method, rule in _known_routes(walk_app):
        allowed = ACCESS[(method, rule.rule)]
        for url, _real in _urls(rule, samples):
            response = _send(client, method, url)
            status = response.status_code
            if status >= 500:
                wrong.append(f"{method} {url}: {status}")
            elif allowed == PUBLIC:
                continue
            elif url.startswith("/api/"):
                if status != 401:
                    wrong.append(f"{method} {url}: {status}, expected 401")
            elif status != 302 or not response.location.startswith("/login"):
                wrong.append(f"{method} {url}: {status} {response.location}, "
                             "expected a redirect to /login")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_what_the_table_says(walk_app, db, make_ticket, role):
    samples = _world(db, make_ticket)
    me = users.create_user(db, f"the-{role}", role, "role-password")
    token = users.create_token(db, f"token-{role}", me.name)
    db.commit()
    client = walk_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    wrong = []
    for method, rule in _known_routes(walk_app):
        allowed = ACCESS[(method, rule.rule)]
        for url, real in _urls(rule, samples):
            # Log in afresh each time: a walked /logout or password change ends the session.
            db.expire_all()
            epoch = db.scalar(select(User.session_epoch).where(User.id == me.id))
            with client.session_transaction() as session:
                session.clear()
                session.update(user_id=me.id, epoch=epoch)
            response = _send(client, method, url, headers if url.startswith("/api/") else None)
            status, where = response.status_code, response.location or ""
            seen = f"{method} {url} as {role}: {status} {where}".rstrip()
            if status >= 500:
                wrong.append(seen)
            elif allowed == PUBLIC:
                continue
            elif role in allowed:
                if status in (401, 403) or "/login" in where:
                    wrong.append(seen + ", expected to be allowed")
            elif not (status == 403 or (status == 404 and not real)):
                wrong.append(seen + ", expected 403")
    assert not wrong, "\n".join(wrong)
