"""Every id, cursor and number a request carries is bounded: out of range is a 4xx with a
sentence (404 in a path, 400 in a query or JSON body, 413 for a body over the limit)."""
from __future__ import annotations

import pytest
from helpers import page
from sqlalchemy import select

from gateway.db.models import Message, Order, Product
from helpdesk_web.bounds import MAX_BODY, MAX_ID
from helpdesk_web.ui.reply_templates import MAX_SOURCE

HUGE = "9" * 20  # past every integer column, and past SQLite's 64 bits



def assert_sentence(response, status, *words):
    """The status, and an error a person can read that names what is wrong."""
    assert response.status_code == status
    text = response.json["error"] if response.is_json else page(response)
    assert "Traceback" not in text
    for word in words:
        assert word in text, (word, text)


# --- ids in a path -------------------------------------------------------------------

@pytest.mark.parametrize("bad", [HUGE, str(MAX_ID + 1), "0", "-1", "00"])
def test_ui_id_out_of_range_is_404_with_a_sentence(client, auth, bad):
    auth.login("admin", "admin")
    assert_sentence(client.get(f"/tickets/{bad}"), 404, str(MAX_ID))
    for path in (f"/tickets/{bad}/reply", f"/tickets/{bad}/status", f"/tickets/{bad}/call",
                 f"/payments/{bad}/confirm", f"/payments/{bad}/reject",
                 f"/products/{bad}/deactivate", f"/messages/{bad}/handled"):
        assert_sentence(auth.post(path, {"text": "Halo", "status": "open"}), 404, str(MAX_ID))


@pytest.mark.parametrize("bad", [HUGE, str(MAX_ID + 1), "0", "-5"])
def test_api_id_out_of_range_is_404_json(client, api_headers, bad):
    for path in (f"/api/v1/tickets/{bad}", f"/api/v1/messages/{bad}"):
        response = client.get(path, headers=api_headers)
        assert response.is_json and set(response.json) == {"error"}
        assert_sentence(response, 404, str(MAX_ID))
    for action in ("confirm", "reject"):
        response = client.post(f"/api/v1/payments/{bad}/{action}", headers=api_headers)
        assert_sentence(response, 404, str(MAX_ID))


def test_largest_id_is_simply_not_found(client, auth, api_headers):
    auth.login("admin", "admin")
    assert_sentence(client.get(f"/tickets/{MAX_ID}"), 404, "no ticket")
    assert_sentence(client.get(f"/api/v1/tickets/{MAX_ID}", headers=api_headers), 404,
                    "no ticket")


def test_every_id_in_a_path_goes_through_the_bounded_converter(app):
    from werkzeug.routing.converters import IntegerConverter, NumberConverter

    loose = [rule.rule for rule in app.url_map.iter_rules()
             if any(isinstance(c, IntegerConverter | NumberConverter)
                    for c in rule._converters.values())]
    assert loose == []


# --- numbers in a query --------------------------------------------------------------

API_LISTS = ("messages", "tickets", "contacts", "orders", "payments", "calls")


@pytest.mark.parametrize("name, value", [
    ("limit", HUGE), ("limit", "-1"), ("limit", "0"), ("limit", "501"), ("limit", "ten"),
    ("before", HUGE), ("before", "-1"), ("before", "x"), ("before", str(MAX_ID + 1)),
    ("after", HUGE), ("after", "-3"), ("after", "1e3"), ("after", "²"),
])
def test_api_list_arguments_out_of_range_are_400(client, api_headers, name, value):
    for endpoint in API_LISTS:
        response = client.get(f"/api/v1/{endpoint}", query_string={name: value},
                              headers=api_headers)
        assert set(response.json) == {"error"}
        # The sentence names the argument and what it may be.
        high = "500" if name == "limit" else str(MAX_ID)
        assert_sentence(response, 400, name, high)


@pytest.mark.parametrize("query", [f"ticket={HUGE}", "ticket=-1", f"contact={HUGE}",
                                   "contact=abc"])
def test_api_filter_ids_out_of_range_are_400(client, api_headers, query):
    endpoint = "messages" if query.startswith("ticket") else "tickets"
    response = client.get(f"/api/v1/{endpoint}?{query}", headers=api_headers)
    assert_sentence(response, 400, query.split("=")[0], str(MAX_ID))


def test_api_cursors_at_the_edges_of_the_range_work(client, db, api_headers):
    db.add(Message(direction="in", number="+6281234567890", text="m", status="received"))
    db.commit()
    for query in (f"before={MAX_ID}", "after=0", "limit=500", "limit=1", f"after={MAX_ID}"):
        response = client.get(f"/api/v1/messages?{query}", headers=api_headers)
        assert response.status_code == 200, query
    assert len(client.get("/api/v1/messages?after=0", headers=api_headers).json["items"]) == 1


@pytest.mark.parametrize("path", ["/tickets", "/orders", "/payments"])
@pytest.mark.parametrize("query", [f"before={HUGE}", "before=-1", "before=x", f"after={HUGE}",
                                   "limit=0", f"limit={HUGE}"])
def test_ui_list_cursors_out_of_range_are_400_pages(client, auth, path, query):
    auth.login("admin", "admin")
    response = client.get(f"{path}?{query}")
    assert not response.is_json
    assert_sentence(response, 400, query.split("=")[0])


@pytest.mark.parametrize("q", [f"#{HUGE}", HUGE, "²", "#-1"])
def test_ticket_search_for_a_huge_number_just_finds_nothing(client, auth, make_ticket, q):
    make_ticket()
    auth.login()
    response = client.get("/tickets", query_string={"q": q})
    assert response.status_code == 200 and "Tidak ada tiket" in page(response)


# --- numbers in a JSON body ----------------------------------------------------------

@pytest.mark.parametrize("raw", [
    '{"to": 123456789012345678901234567890, "text": "Halo"}',
    '{"to": "081234567890", "text": 1e400}',
    '{"to": "123456789012345678901234567890", "text": "Halo"}',
    '{"to": "081234567890", "text": "Halo", "n": ' + "9" * 5000 + "}",
    "[" * 100_000 + "]" * 100_000,
    '{"to": "081234567890", "text": "Halo"',
])
def test_post_message_with_hostile_json_is_400(client, db, api_headers, queued, raw):
    response = client.post("/api/v1/messages", data=raw, content_type="application/json",
                           headers=api_headers)
    assert set(response.json) == {"error"}
    assert_sentence(response, 400)
    assert db.scalar(select(Message)) is None and queued == []


@pytest.mark.parametrize("order_id", [10**20, MAX_ID + 1, 0, -1, 1.5, "12", True, None])
def test_confirm_payment_order_id_out_of_range_is_400(client, db, api_headers, order_id):
    from test_web_shop import arrange

    shop = arrange(db, matched=False)
    response = client.post(f"/api/v1/payments/{shop.payment_id}/confirm",
                           json={"order_id": order_id}, headers=api_headers)
    if order_id is None:  # the same as leaving it out: there is no order to confirm
        assert_sentence(response, 400, "choose the order")
    else:
        assert_sentence(response, 400, "order_id", str(MAX_ID))
    db.expire_all()
    assert db.get(Order, shop.order_id).status == "awaiting_payment"


def test_ui_confirm_with_a_huge_order_number_is_refused_politely(client, auth, db):
    from test_web_shop import arrange

    shop = arrange(db, matched=False)
    auth.login("sari", "sales")
    response = auth.post(f"/payments/{shop.payment_id}/confirm", {"order_id": HUGE},
                         follow_redirects=True)
    assert response.status_code == 200 and "bukan nomor pesanan" in page(response)


@pytest.mark.parametrize("field", ["price", "stock"])
def test_product_form_with_a_5000_digit_number_is_refused(client, auth, db, field):
    auth.login("admin", "admin")
    form = {"code": "XL25", "name": "XL", "price": "5000", field: "9" * 5000}
    response = auth.post("/products", form)
    assert response.status_code == 400
    assert db.scalar(select(Product)) is None


# --- bodies over the limit -----------------------------------------------------------

def test_api_body_over_the_limit_is_413_json(client, db, api_headers):
    text = "x" * (MAX_BODY + 1)
    response = client.post("/api/v1/messages", json={"to": "081234567890", "text": text},
                           headers=api_headers)
    assert set(response.json) == {"error"}
    assert_sentence(response, 413, "MiB")
    assert db.scalar(select(Message)) is None


def test_form_over_the_limit_is_a_413_page(client, auth, db, make_ticket):
    ticket = make_ticket()
    auth.login()
    response = auth.post(f"/tickets/{ticket.id}/reply", {"text": "x" * (MAX_BODY + 1)})
    assert not response.is_json
    assert_sentence(response, 413, "MiB")
    assert db.scalar(select(Message).where(Message.direction == "out")) is None
    response = client.post("/login", data={"name": "x" * (MAX_BODY + 1), "password": "x"})
    assert_sentence(response, 413, "MiB")


@pytest.mark.parametrize("length", [MAX_SOURCE + 1, 70_000])  # past MariaDB's 64 KiB TEXT
def test_template_source_over_its_limit_is_refused(client, auth, db, length):
    auth.login("admin", "admin")
    response = auth.post("/templates/help/id", {"source": "x" * length})
    assert_sentence(response, 400, f"at most {MAX_SOURCE}")


@pytest.mark.parametrize("text, expected", [
    ("7", 7), (" 7 ", 7), ("-0", 0), ("0007", 7), (str(MAX_ID), MAX_ID),
    (str(MAX_ID + 1), None), ("-1", None), ("+1", None), ("1_000", None), ("1e3", None),
    ("²", None), ("٣", None), ("", None), ("-", None), ("9" * 5000, None),
])
def test_parse_int_takes_plain_digits_in_range_only(text, expected):
    from helpdesk_web.bounds import parse_int

    assert parse_int(text, 0, MAX_ID) == expected
