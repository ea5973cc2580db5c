"""Tables for the whole product, the same on SQLite and MariaDB (utf8mb4, InnoDB).

Times are stored as naive UTC; the API adds the offset. Money is integer rupiah.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    orm_insert_sentinel,
    relationship,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
         "mysql_collate": "utf8mb4_unicode_ci"}

# MEDIUMTEXT on MariaDB: an operator's note or a 1,600-character SMS fits either way,
# but TEXT's 64 KiB would cut a long audit detail.
LongText = Text().with_variant(Text(length=16_000_000), "mysql")

TICKET_STATUSES = ("new", "open", "pending", "resolved", "closed")
OPEN_TICKET_STATUSES = TICKET_STATUSES[:3]
# Ticket.queue_rank of a resolved or closed ticket is this or more, of an open one less:
# all the open tickets, in the queue's order, are one range of one index.
CLOSED_RANK = 8
TICKET_KINDS = ("order", "complaint", "payment", "question", "call", "warranty")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_PERSON, PRIORITY_BULK = 0, 1  # messages.priority


def utcnow(clock=None) -> dt.datetime:
    """Naive UTC now, from a Twisted clock (IReactorTime) when one is given."""
    if clock is None:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return dt.datetime.fromtimestamp(clock.seconds(), dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class BatchInserted:
    """A table the SMS pipeline inserts many rows into at once. SQLite cannot return
    new ids in the order of the rows of one multi-row INSERT, so SQLAlchemy inserts
    such rows one statement each unless the INSERT carries a counter to sort by: this
    column (SQLAlchemy's insert sentinel, NULL outside a batch; migration 0019). A
    batch of 100 texts then takes a few statements per table instead of 100."""
    _sentinel: Mapped[int | None] = orm_insert_sentinel()


class Contact(BatchInserted, Base):
    __tablename__ = "contacts"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)  # E.164, or the raw sender
    name: Mapped[str | None] = mapped_column(String(200))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(8))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # The CRM (gateway.desk.crm): CONTACT_TYPES, free notes, and blocked: their texts are
    # stored but get no automatic reply and open no ticket.
    organisation: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16), default="customer", server_default="customer",
                                      index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    tags: Mapped[list[Tag]] = relationship(secondary="contact_tags", order_by="Tag.name")


CONTACT_TYPES = ("customer", "reseller", "dealer")


class Tag(Base):
    """A label on contacts (lower case), to filter the contact list and address broadcasts."""
    __tablename__ = "tags"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)


class ContactTag(Base):
    __tablename__ = "contact_tags"
    __table_args__ = (Index(None, "tag_id", "contact_id"), MYSQL)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True)


class ContactGroup(Base):
    """A named list of contacts (Kalkun's phonebook groups), the audience of a broadcast."""
    __tablename__ = "contact_groups"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    members: Mapped[list[Contact]] = relationship(secondary="contact_group_members",
                                                  order_by="Contact.id", viewonly=True)


class ContactGroupMember(Base):
    __tablename__ = "contact_group_members"
    __table_args__ = (Index(None, "contact_id", "group_id"), MYSQL)
    group_id: Mapped[int] = mapped_column(ForeignKey("contact_groups.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    extension: Mapped[str | None] = mapped_column(String(32))  # softphone, for calls
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    language: Mapped[str | None] = mapped_column(String(8))  # UI language, id or en
    # Kept in the signed session cookie; raising it (logout, new password, disable) makes
    # every cookie issued before refused, so a copied cookie dies with the session.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    # Acts with this user's role; NULL is an integration's token with full API access.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User | None] = relationship()


class Modem(Base):
    """Health and counters of one configured modem, written by its worker."""
    __tablename__ = "modems"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # up, down, unknown
    imei: Mapped[str | None] = mapped_column(String(32))
    operator: Mapped[str | None] = mapped_column(String(64))
    network: Mapped[str | None] = mapped_column(String(32))
    signal_percent: Mapped[int | None] = mapped_column(Integer)
    battery_percent: Mapped[int | None] = mapped_column(Integer)
    last_seen: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    received_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    # The SIM's prepaid credit, from the USSD answer to the modem's ussd_balance code:
    # the answer as it came, and what could be read from it (None where nothing could).
    balance: Mapped[int | None] = mapped_column(BigInteger)  # rupiah
    balance_expiry: Mapped[dt.date | None] = mapped_column(Date)
    balance_text: Mapped[str | None] = mapped_column(String(255))
    balance_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # SIM storage: texts on it and its size, from GetSMSStatus
    sim_used: Mapped[int | None] = mapped_column(Integer)
    sim_size: Mapped[int | None] = mapped_column(Integer)
    # The gateway host whose daemon has this modem and writes its row (migration 0015).
    host: Mapped[str | None] = mapped_column(String(128))


class Ticket(BatchInserted, Base):
    __tablename__ = "tickets"
    __table_args__ = (Index(None, "contact_id", "status"), Index(None, "status", "id"),
                      # the dashboard counts open tickets by kind and age from the index alone
                      Index(None, "status", "kind", "created_at", "first_response_at"),
                      # the queue by status and last change, and by assignee (migration 0009)
                      Index(None, "status", "updated_at"), Index(None, "assignee_id", "status"),
                      # the queue's order, page after page: of one status (migration
                      # 0017) and of all open ones, ranked before the closed (0018)
                      Index(None, "status", "queue_rank", "queue_since", "id"),
                      Index(None, "queue_rank", "queue_since", "id"),
                      MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="question")
    status: Mapped[str] = mapped_column(String(16), default="new")
    subject: Mapped[str] = mapped_column(String(200), default="")
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    priority: Mapped[str] = mapped_column(String(8), default="normal", server_default="normal")
    # Set when this ticket was merged into another; it is closed and points there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # Since when the customer waits for a person's answer: their first text after a
    # person last answered (an acknowledgement is no answer); None when nobody waits.
    waiting_since: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The queue's order, kept by queue_order() at every flush: open tickets (0..7) before
    # closed ones (8..15), waiting customers first, then by priority, then the longest
    # wait or the oldest ticket.
    queue_rank: Mapped[int] = mapped_column(SmallInteger, default=6, server_default="6")
    queue_since: Mapped[dt.datetime | None] = mapped_column(DateTime, default=utcnow)

    contact: Mapped[Contact] = relationship()
    assignee: Mapped[User | None] = relationship()

    def queue_order(self) -> None:
        self.created_at = self.created_at or utcnow()
        urgency = TICKET_PRIORITIES.index(self.priority) if self.priority in \
            TICKET_PRIORITIES else 1
        self.queue_rank = (0 if self.status in OPEN_TICKET_STATUSES else CLOSED_RANK) + (
            0 if self.waiting_since is not None else 4) + 3 - urgency
        self.queue_since = self.waiting_since or self.created_at

    @property
    def number(self) -> str:
        """What the customer is told and texts back (STATUS 12)."""
        return str(self.id)


class TicketEvent(BatchInserted, Base):
    """The ticket's timeline: created, message in/out, status and assignment changes."""
    __tablename__ = "ticket_events"
    __table_args__ = (Index(None, "ticket_id", "id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(24))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship()
    message: Mapped[Message | None] = relationship()


class Message(BatchInserted, Base):
    """One whole SMS, inbound (after reassembly) or outbound (before splitting)."""
    __tablename__ = "messages"
    __table_args__ = (
        Index(None, "direction", "status", "next_attempt_at"),
        Index(None, "direction", "id"),  # the inbox and sent folders, newest first
        Index(None, "number", "id"),
        Index(None, "ticket_id", "id"),
        Index(None, "contact_id", "id"),  # a contact's timeline (migration 0009)
        Index(None, "created_at"),  # the reports' date ranges (migration 0016)
        # The few texts marked for a person, counted on every page: SQLite's statistics
        # count NULLs as one value and would send the count through the direction index;
        # this one covers the count, so the planner takes it.
        Index("ix_messages_attention_marked", "direction", "attention",
              sqlite_where=text("attention IS NOT NULL"),
              postgresql_where=text("attention IS NOT NULL")).ddl_if(
                  dialect=("sqlite", "postgresql")),
        Index(None, "attention"),
        MYSQL,
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # in, out
    number: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(LongText)
    status: Mapped[str] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(16))
    incomplete: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    modem: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    smsc_time: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Why a person must look at this text (it could not be read or filed), until one has;
    # NULL for the texts that went through. See gateway.desk.inbox.
    attention: Mapped[str | None] = mapped_column(String(255))
    # outbound only
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # migration 0015
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))
    # The outbox sends lower first: PRIORITY_PERSON for replies and acknowledgements,
    # PRIORITY_BULK for a broadcast, so a person's answer never waits behind one.
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")

    parts: Mapped[list[MessagePart]] = relationship(order_by="MessagePart.part_number")
    contact: Mapped[Contact | None] = relationship()
    ticket: Mapped[Ticket | None] = relationship()


class MessagePart(BatchInserted, Base):
    """One SMS as the network carried it.

    Inbound parts are stored before the SIM copy is deleted; `dedupe_key` makes a re-read
    harmless. Parts of an unfinished multipart message wait here with message_id NULL.
    Outbound parts keep the message reference the network gave, for delivery reports.
    """
    __tablename__ = "message_parts"
    __table_args__ = (Index(None, "message_id", "part_number"),
                      Index(None, "group_key", "message_id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    group_key: Mapped[str | None] = mapped_column(String(64))  # multipart message being assembled
    modem: Mapped[str | None] = mapped_column(String(64))
    sender: Mapped[str | None] = mapped_column(String(32))
    part_number: Mapped[int] = mapped_column(Integer, default=1)
    part_count: Mapped[int] = mapped_column(Integer, default=1)
    # UTF-16-BE with surrogatepass, so half an emoji at a part boundary survives until joined
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    coding: Mapped[str | None] = mapped_column(String(32))
    smsc_time: Mapped[dt.datetime | None] = mapped_column(DateTime)
    reference: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class StatusReport(Base):
    """A delivery report; matched to an outbound part, or kept unmatched for a person."""
    __tablename__ = "status_reports"
    __table_args__ = (Index(None, "modem", "reference"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    modem: Mapped[str] = mapped_column(String(64))
    reference: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(Integer)  # None: not counted (vouchers)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Days of warranty from the day an item is sold; None: the product has no warranty.
    warranty_days: Mapped[int | None] = mapped_column(Integer)


class Order(BatchInserted, Base):
    __tablename__ = "orders"
    __table_args__ = (Index(None, "status", "total"), Index(None, "contact_id", "id"),
                      Index(None, "created_at"), MYSQL)  # created_at: today's orders
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    status: Mapped[str] = mapped_column(String(16), default="awaiting_payment")
    unique_code: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    # The total while the order waits for payment, NULL after: the unique index is what
    # keeps two open orders from ever sharing an amount, even across gateway hosts.
    open_total: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    items: Mapped[list[OrderItem]] = relationship()

    @property
    def number(self) -> str:
        return str(self.id)


class OrderItem(BatchInserted, Base):
    __tablename__ = "order_items"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    code: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)


WARRANTY_STATES = ("received", "in_repair", "replaced", "returned")


class SoldItem(Base):
    """One item sold, by its serial number (upper case, unique in the shop), with the day
    its warranty ends. A replacement is a new row that `replaces` the item it stands for."""
    __tablename__ = "sold_items"
    __table_args__ = (Index(None, "order_item_id"), Index(None, "contact_id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    order_item_id: Mapped[int | None] = mapped_column(ForeignKey("order_items.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    sold_on: Mapped[dt.date] = mapped_column(Date)
    warranty_until: Mapped[dt.date | None] = mapped_column(Date)  # None: no warranty
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("sold_items.id"))
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("sold_items.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    product: Mapped[Product] = relationship()


class WarrantyClaim(Base):
    """A warranty ticket's item and its repair state (WARRANTY_STATES), with the time
    each state was reached."""
    __tablename__ = "warranty_claims"
    __table_args__ = (Index(None, "item_id", "id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("sold_items.id"))
    state: Mapped[str] = mapped_column(String(16), default="received")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    received_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    in_repair_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    replaced_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    returned_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    item: Mapped[SoldItem] = relationship()


class Payment(BatchInserted, Base):
    __tablename__ = "payments"
    __table_args__ = (Index(None, "status", "id"), Index(None, "contact_id", "id"),
                      Index(None, "created_at"), MYSQL)  # created_at: the reports (0016)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    bank: Mapped[str | None] = mapped_column(String(32))
    payer_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="unverified")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (Index(None, "number", "id"), Index(None, "contact_id", "id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64), unique=True)  # Asterisk's
    number: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(3), default="in")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    disposition: Mapped[str | None] = mapped_column(String(32))

    operator: Mapped[User | None] = relationship()


class ReplyTemplate(Base):
    """An admin's edit of a built-in SMS reply template (file default otherwise)."""
    __tablename__ = "reply_templates"
    __table_args__ = (UniqueConstraint("name", "language"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class CannedResponse(Base):
    """A ready answer an operator picks into the reply box (managed on /canned)."""
    __tablename__ = "canned_responses"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class SlaTarget(Base):
    """Minutes allowed to a first response and to resolution, per ticket kind (/sla)."""
    __tablename__ = "sla_targets"
    __table_args__ = (MYSQL,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), unique=True)
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "target_type", "target_id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(LongText)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# --- Broadcasts (gateway.desk.broadcasts, migration 0012) ---------------------------------
BROADCAST_STATUSES = ("running", "paused", "cancelled", "done")
# pending: not yet in the outbox; queued: its text is (message_id); skipped: opted out,
# blocked or no phone (skip_reason); cancelled: the broadcast was cancelled first.
RECIPIENT_STATUSES = ("pending", "queued", "skipped", "cancelled")


class Broadcast(Base):
    """One text to many: a template over a group, a tag or a list of numbers."""
    __tablename__ = "broadcasts"
    __table_args__ = (Index(None, "status", "id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    audience_kind: Mapped[str] = mapped_column(String(16))  # group, tag, numbers
    audience: Mapped[str] = mapped_column(String(200))  # the group's or tag's name
    status: Mapped[str] = mapped_column(String(16), default="running")
    total: Mapped[int] = mapped_column(Integer, default=0)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class BroadcastRecipient(Base):
    """One number of a broadcast. The unique (broadcast_id, number) and the message_id
    written in the transaction that queues the text make a restart send nobody twice."""
    __tablename__ = "broadcast_recipients"
    __table_args__ = (UniqueConstraint("broadcast_id", "number"),
                      Index(None, "broadcast_id", "status", "id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    number: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))


# --- Bank statements (gateway.desk.statements, migration 0013) ------------------------------
# matched: an open order found, waiting for one click (or confirmed at import with [bank]
# auto_confirm); confirmed: its payment is; ambiguous and unmatched wait for a person.
BANK_LINE_STATUSES = ("matched", "confirmed", "ambiguous", "unmatched")


class BankStatementLine(Base):
    """One credit of an imported bank statement. The unique `fingerprint` (bank, account,
    day, text, amount and which of identical lines in its file) makes importing the same
    statement again, or one that overlaps it, add nothing twice."""
    __tablename__ = "bank_statement_lines"
    __table_args__ = (Index(None, "status", "id"), Index(None, "order_id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    bank: Mapped[str] = mapped_column(String(32))
    account: Mapped[str | None] = mapped_column(String(40))
    booked_on: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(500))
    amount: Mapped[int] = mapped_column(BigInteger)  # whole rupiah
    status: Mapped[str] = mapped_column(String(16), default="unmatched")
    matched_by: Mapped[str | None] = mapped_column(String(8))  # "total" or "sms"
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    reason: Mapped[str | None] = mapped_column(String(300))  # why it waits for a person
    file_name: Mapped[str | None] = mapped_column(String(200))
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


# --- Cluster claims (gateway.desk.outbox, migration 0015) -----------------------------------
# Also messages.claimed_at and modems.host, above.
class GatewayNode(Base):
    """A `helpdesk run` host sharing the database, and when it last beat. A host silent
    for longer than its claim lease is taken for dead: the texts it left `sending` become
    `unknown`, and the others stop leaving a share of the outbox to it."""
    __tablename__ = "gateway_nodes"
    __table_args__ = (MYSQL,)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime)
    lease: Mapped[float] = mapped_column(Float)  # its claim_lease, seconds


# --- Kalkun import (gateway.imports.kalkun, migration 0014) ---------------------------------
class KalkunImported(Base):
    """A Gammu SMSD row already imported, and the text it became: a second run of
    `helpdesk import kalkun` skips it. `source` names the database it came from; every
    part of a multipart text has its row, all pointing at the one message."""
    __tablename__ = "kalkun_imported"
    __table_args__ = (UniqueConstraint("source", "source_table", "source_id"), MYSQL)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    source_table: Mapped[str] = mapped_column(String(16))  # inbox, sentitems, outbox
    source_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# --- Reports: the daily summary (gateway.reports.summary, migration 0016) --------------------
class DailySummary(Base):
    """A local day whose summary was queued to the supervisors: the row and the texts
    commit together, and the key refuses a second one, so a restart or a second gateway
    host never sends a day twice."""
    __tablename__ = "daily_summaries"
    __table_args__ = (MYSQL,)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime)
    recipients: Mapped[int] = mapped_column(Integer)


@event.listens_for(Session, "before_flush")
def _queue_order(session, _context, _instances) -> None:
    """Every ticket written carries its place in the queue, whatever changed it."""
    for row in (*session.new, *session.dirty):
        if isinstance(row, Ticket):
            row.queue_order()
