"""Payment decisions in the domain (gateway.desk.payments), and on the API that shares them."""
from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from sqlalchemy import func, select
from test_web_shop import arrange, outbound

from gateway.db.models import AuditLog, Contact, Order, Payment, Product, TicketEvent
from gateway.desk import payments, replies, users

SARI = payments.Actor(None, "sari")


@pytest.fixture
def config(config):
    """The UI in English here, whatever the catalogue holds: assertions read English."""
    return dataclasses.replace(config, web_language="en")


def audits(db, action):
    db.expire_all()
    return db.scalars(select(AuditLog).where(AuditLog.action == action)).all()


# --- the domain, without Flask ----------------------------------------------------------

def test_confirm_does_the_whole_decision_in_the_callers_session(db):
    shop = arrange(db)
    decision = payments.confirm(db, shop.payment_id, SARI, "id")
    db.commit()
    assert decision.payment.status == "confirmed" and decision.order.status == "paid"
    assert db.get(Product, shop.product_id).stock == 98
    [sms] = outbound(db)
    assert sms.id == decision.message.id and sms.ticket_id == shop.ticket_id
    assert sms.text == replies.render("payment_confirmed", "id", db,
                                      amount=decision.payment.amount,
                                      order_number=decision.order.number)
    [note] = db.scalars(select(TicketEvent.detail).where(TicketEvent.kind == "note")).all()
    assert note.endswith("by sari")
    [row] = audits(db, "payment.confirm")
    assert json.loads(row.detail) == {"order_id": shop.order_id,
                                      "amount": decision.payment.amount,
                                      "message_id": sms.id}


def test_nothing_is_kept_unless_the_caller_commits(db):
    shop = arrange(db)
    payments.confirm(db, shop.payment_id, SARI, "id")
    db.rollback()
    assert db.get(Payment, shop.payment_id).status == "unverified"
    assert db.get(Product, shop.product_id).stock == 100 and outbound(db) == []


def test_a_second_decision_is_a_conflict(db):
    shop = arrange(db)
    payments.confirm(db, shop.payment_id, SARI, "id")
    db.commit()
    for decide in (payments.confirm, payments.reject):
        with pytest.raises(payments.PaymentConflict, match="already confirmed"):
            decide(db, shop.payment_id, SARI, "id")
        db.rollback()
    assert db.get(Product, shop.product_id).stock == 98 and len(outbound(db)) == 1


def test_reject_tells_the_customer_and_takes_nothing(db):
    shop = arrange(db)
    decision = payments.reject(db, shop.payment_id, SARI, "id")
    db.commit()
    assert decision.payment.status == "rejected" and decision.order is None
    assert db.get(Order, shop.order_id).status == "awaiting_payment"
    assert "belum kami temukan" in decision.message.text
    assert len(audits(db, "payment.reject")) == 1


def test_unknown_payment_is_not_found(db):
    with pytest.raises(payments.PaymentNotFound, match="no payment 4242"):
        payments.confirm(db, 4242, SARI, "id")


def test_a_customer_without_a_phone_number_is_confirmed_untold(db):
    shop = arrange(db)
    db.get(Contact, shop.contact_id).phone = "TELKOMSEL"
    db.commit()
    decision = payments.confirm(db, shop.payment_id, SARI, "id")
    db.commit()
    assert decision.message is None and decision.payment.status == "confirmed"
    assert outbound(db) == []


def test_an_sms_that_cannot_be_queued_refuses_the_decision(db, monkeypatch):
    shop = arrange(db)
    monkeypatch.setattr(replies, "render", lambda *args, **kwargs: "x" * 2000)
    with pytest.raises(payments.PaymentDecisionError, match="SMS to the customer"):
        payments.confirm(db, shop.payment_id, SARI, "id")
    db.rollback()
    assert db.get(Payment, shop.payment_id).status == "unverified"


# --- the API ----------------------------------------------------------------------------

def post(client, path, headers, body=None):
    response = client.post(path, json=body, headers=headers)
    assert response.is_json
    return response


def token_for(db, make_user, role) -> dict:
    make_user(role, role)
    raw = users.create_token(db, f"{role}-token", user_name=role)
    db.commit()
    return {"Authorization": f"Bearer {raw}"}


def test_api_confirm_answers_the_payment_and_tells_the_customer(client, db, api_headers,
                                                               queued):
    shop = arrange(db)
    response = post(client, f"/api/v1/payments/{shop.payment_id}/confirm", api_headers)
    assert response.status_code == 200
    assert response.json["id"] == shop.payment_id and response.json["status"] == "confirmed"
    assert response.json["order_id"] == shop.order_id
    db.expire_all()
    assert db.get(Order, shop.order_id).status == "paid"
    assert db.get(Product, shop.product_id).stock == 98
    [sms] = outbound(db)
    assert queued == [sms.id]
    [row] = audits(db, "payment.confirm")
    assert row.user_id is None and json.loads(row.detail)["token"] == "integration"
    [note] = db.scalars(select(TicketEvent.detail).where(TicketEvent.kind == "note")).all()
    assert note.endswith("by API token 'integration'")


def test_api_second_confirm_is_409_and_changes_nothing(client, db, api_headers, queued):
    shop = arrange(db)
    post(client, f"/api/v1/payments/{shop.payment_id}/confirm", api_headers)
    response = post(client, f"/api/v1/payments/{shop.payment_id}/confirm", api_headers)
    assert response.status_code == 409 and set(response.json) == {"error"}
    assert "already confirmed" in response.json["error"]
    db.expire_all()
    assert db.get(Product, shop.product_id).stock == 98
    assert len(outbound(db)) == 1 and len(queued) == 1
    assert len(audits(db, "payment.confirm")) == 1


def test_api_reject_then_confirm_is_409(client, db, api_headers):
    shop = arrange(db)
    response = post(client, f"/api/v1/payments/{shop.payment_id}/reject", api_headers)
    assert response.status_code == 200 and response.json["status"] == "rejected"
    response = post(client, f"/api/v1/payments/{shop.payment_id}/confirm", api_headers)
    assert response.status_code == 409 and "already rejected" in response.json["error"]
    response = post(client, f"/api/v1/payments/{shop.payment_id}/reject", api_headers)
    assert response.status_code == 409 and "already rejected" in response.json["error"]


def test_api_unmatched_payment_needs_the_order_id(client, db, api_headers):
    shop = arrange(db, matched=False)
    path = f"/api/v1/payments/{shop.payment_id}/confirm"
    response = post(client, path, api_headers)
    assert response.status_code == 400 and "choose the order" in response.json["error"]
    response = post(client, path, api_headers, {"order_id": shop.order_id})
    assert response.status_code == 200 and response.json["order_id"] == shop.order_id


def test_api_refuses_another_customers_order_and_missing_stock(client, db, api_headers):
    mine = arrange(db, matched=False, stock=1)
    theirs = arrange(db, phone="+6281398765432")
    path = f"/api/v1/payments/{mine.payment_id}/confirm"
    response = post(client, path, api_headers, {"order_id": theirs.order_id})
    assert response.status_code == 400 and "another customer" in response.json["error"]
    response = post(client, path, api_headers, {"order_id": 999_999})
    assert response.status_code == 400 and "no order 999999" in response.json["error"]
    response = post(client, path, api_headers, {"order_id": mine.order_id})
    assert response.status_code == 409 and "only 1 of XL25 left" in response.json["error"]
    db.expire_all()
    assert db.get(Payment, mine.payment_id).status == "unverified"


@pytest.mark.parametrize("body", ['"12"', "[12]", "not json"])
def test_api_confirm_body_must_be_a_json_object(client, db, api_headers, body):
    shop = arrange(db)
    response = client.post(f"/api/v1/payments/{shop.payment_id}/confirm", data=body,
                           content_type="application/json", headers=api_headers)
    assert response.status_code == 400 and "order_id" in response.json["error"]


def test_api_unknown_payment_is_404(client, api_headers):
    for action in ("confirm", "reject"):
        response = post(client, f"/api/v1/payments/4242/{action}", api_headers)
        assert response.status_code == 404 and "no payment 4242" in response.json["error"]


@pytest.mark.parametrize("role, allowed", [("admin", True), ("sales", True),
                                           ("supervisor", False), ("operator", False),
                                           ("viewer", False)])
def test_api_payment_decisions_are_for_admin_and_sales(client, db, make_user, role, allowed):
    headers = token_for(db, make_user, role)
    for n, action in enumerate(("reject", "confirm")):
        shop = arrange(db, phone=f"+628120000000{n}")
        response = post(client, f"/api/v1/payments/{shop.payment_id}/{action}", headers)
        assert response.status_code == (200 if allowed else 403), (role, action)
        if allowed:
            [row] = audits(db, f"payment.{action}")
            assert row.user_id is not None and json.loads(row.detail)["token"] == f"{role}-token"
        else:
            assert role in response.json["error"] and "admin, sales" in response.json["error"]
            db.expire_all()
            assert db.get(Payment, shop.payment_id).status == "unverified"


def test_api_simultaneous_confirms_decide_once(app, db, api_headers, monkeypatch):
    """Two integrations retrying at once: one 200, one 409, never a 500 or two SMS."""
    import time

    shop = arrange(db)
    original = payments.confirm_payment

    def slow_confirm(*args, **kwargs):
        time.sleep(0.5)  # hold the row long enough for the other request to arrive
        return original(*args, **kwargs)

    monkeypatch.setattr(payments, "confirm_payment", slow_confirm)
    statuses = []

    def confirm():
        response = app.test_client().post(f"/api/v1/payments/{shop.payment_id}/confirm",
                                           headers=api_headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200, 409]
    db.expire_all()
    assert db.get(Product, shop.product_id).stock == 98 and len(outbound(db)) == 1
    assert db.scalar(select(func.count(AuditLog.id))
                     .where(AuditLog.action == "payment.confirm")) == 1


# --- matching by hand -------------------------------------------------------------------

def second_order(db, shop, total=77_777, status="awaiting_payment") -> Order:
    """Another order of the same customer (open unless told)."""
    order = Order(contact_id=shop.contact_id, status=status, total=total,
                  open_total=total if status == "awaiting_payment" else None)
    db.add(order)
    db.commit()
    return order


def test_match_sets_the_order_audited_and_leaves_the_payment_to_confirm(db):
    shop = arrange(db, matched=False)
    payment, order = payments.match(db, shop.payment_id, shop.order_id, SARI)
    db.commit()
    assert (payment.order_id, payment.status, order.status) == (
        shop.order_id, "unverified", "awaiting_payment")
    assert outbound(db) == []  # the customer hears only of the decision
    [row] = audits(db, "payment.match")
    assert (row.target_type, row.target_id) == ("payment", shop.payment_id)
    assert json.loads(row.detail) == {"from_order_id": None, "order_id": shop.order_id,
                                      "amount": payment.amount}
    decision = payments.confirm(db, shop.payment_id, SARI, "id")  # no order named: the match
    db.commit()
    assert decision.order.id == shop.order_id and decision.order.status == "paid"


def test_a_wrong_match_is_moved_to_another_open_order_of_the_customer(db):
    shop = arrange(db)  # matched to its order
    other = second_order(db, shop)
    payments.match(db, shop.payment_id, other.id, SARI)
    db.commit()
    assert db.get(Payment, shop.payment_id).order_id == other.id
    assert json.loads(audits(db, "payment.match")[0].detail)["from_order_id"] == shop.order_id


def test_nothing_is_matched_unless_the_caller_commits(db):
    shop = arrange(db, matched=False)
    payments.match(db, shop.payment_id, shop.order_id, SARI)
    db.rollback()
    assert db.get(Payment, shop.payment_id).order_id is None and audits(db, "payment.match") == []


def test_match_refuses_what_cannot_be_paid_by_this_payment(db):
    shop = arrange(db, matched=False)
    theirs = arrange(db, phone="+6281398765432")
    paid = second_order(db, shop, status="paid")
    for order_id, error, sentence in [
            (theirs.order_id, payments.PaymentDecisionError, "belongs to another customer"),
            (paid.id, payments.PaymentConflict, "is paid, not awaiting payment"),
            (999_999, payments.PaymentDecisionError, "no order 999999")]:
        with pytest.raises(error, match=sentence):
            payments.match(db, shop.payment_id, order_id, SARI)
        db.rollback()
    assert db.get(Payment, shop.payment_id).order_id is None
    with pytest.raises(payments.PaymentNotFound):
        payments.match(db, 424_242, shop.order_id, SARI)
    db.rollback()


def test_a_second_match_or_a_match_after_the_decision_is_a_conflict(db):
    shop = arrange(db, matched=False)
    payments.match(db, shop.payment_id, shop.order_id, SARI)
    db.commit()
    with pytest.raises(payments.PaymentConflict, match="already matched to order"):
        payments.match(db, shop.payment_id, shop.order_id, SARI)
    db.rollback()
    payments.reject(db, shop.payment_id, SARI, "id")
    db.commit()
    with pytest.raises(payments.PaymentConflict, match="already rejected"):
        payments.match(db, shop.payment_id, second_order(db, shop).id, SARI)
    db.rollback()
    assert len(audits(db, "payment.match")) == 1
