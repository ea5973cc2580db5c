"""Finding tickets and contacts from what an operator types: one function per list.

A phone number in any spelling finds its contact; `#123` or `123` a ticket number;
anything else a name or words of the texts. Each function returns a condition for the
list's own query, so filters, order and paging stay with the caller.

Words are found through each database's own full-text index, made by migration 0009:
SQLite FTS5 tables (messages_fts, contacts_fts, tickets_fts, kept by triggers),
MariaDB InnoDB FULLTEXT indexes, PostgreSQL GIN indexes on to_tsvector('simple', ...).
Reading every text with LIKE '%...%' took seconds at a million messages. What is found
is what LIKE found for words as written: the typed words in that order, the last one
also as the start of a longer word ("puls" finds "pulsa"; on SQLite when it has three
letters or more), case and accents aside. A
word inside another word ("ulsa" in "pulsa") is no longer found. The query is reduced to
letters and digits before it reaches the index, so quotes, `*`, `-`, `OR`, `NEAR(`, `%`
or `_` are plain separators there and never an error. On MariaDB `_` is part of a word
(InnoDB reads `_promo_` as one word, found by `_promo_`, not by `promo`); words shorter
than three letters and InnoDB's stopwords are checked by LIKE alone.
"""
from __future__ import annotations

import re

from sqlalchemy import Boolean, bindparam, func, literal_column, or_, select, table, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from gateway.db.models import Contact, Message, Ticket
from gateway.desk import reader
from gateway.sms.phone import normalise

MAX_WORDS = 8       # a search is a few words; more only cost the index time

# The full-text index of each searched column, by the name of its SQLite FTS5 table
# (MariaDB and PostgreSQL index the column itself).
FTS_TABLES = {("messages", "text"): "messages_fts", ("contacts", "name"): "contacts_fts",
              ("tickets", "subject"): "tickets_fts"}

# InnoDB's FULLTEXT leaves out words shorter than innodb_ft_min_token_size (3 by
# default) and its default stopwords (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD);
# asking for one of them finds nothing, so such words are checked by LIKE alone.
MYSQL_MIN_WORD, MYSQL_MAX_WORD = 3, 84
MYSQL_STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the "
    "this to was what when where who will with und www".split())
SQLITE_MIN_PREFIX = 3  # a shorter last word matches as a whole word: "a*" reads the index


def words(q: str) -> list[str]:
    """The letters-and-digits runs of `q`, lower case, as the indexes cut texts."""
    return re.findall(r"[^\W_]+", q.lower())[:MAX_WORDS]


class _Matches(ColumnElement):
    """`column` holds the words of `q`: compiled per dialect (see the module docstring)."""
    type = Boolean()
    inherit_cache = False  # the query text depends on `q`: no statement caching

    def __init__(self, column, q: str):
        self.column, self.q, self.words = column, q, words(q)

    def self_group(self, against=None):
        # Already a whole condition (each dialect's text is bracketed where it needs it):
        # no `= 1` around it on databases without a boolean type, which hid the indexes.
        return self


def _like(column, q: str):
    return column.contains(q, autoescape=True)


@compiles(_Matches)
def _compile_like(element, compiler, **kw):
    return compiler.process(_like(element.column, element.q), **kw)


@compiles(_Matches, "sqlite")
def _compile_sqlite(element, compiler, **kw):
    ws = element.words
    if not ws:  # nothing an index holds: punctuation alone, read as it was typed
        return _compile_like(element, compiler, **kw)
    # One FTS5 phrase of the words, every one quoted (no word holds a quote), the last
    # one a prefix when long enough to be worth it.
    phrase = '"' + " ".join(ws) + '"' + ("*" if len(ws[-1]) >= SQLITE_MIN_PREFIX else "")
    column = element.column
    searched = getattr(column.table, "element", column.table)  # the table behind an alias
    fts = FTS_TABLES[(searched.name, column.name)]
    rowids = (select(literal_column("rowid")).select_from(table(fts))
              .where(literal_column(fts).op("MATCH")(bindparam(None, phrase))))
    pk = column.table.c.id
    return compiler.process(pk.in_(rowids), **kw)


@compiles(_Matches, "mysql")
@compiles(_Matches, "mariadb")
def _compile_mysql(element, compiler, **kw):
    typed = re.findall(r"\w+", element.q.lower())[:MAX_WORDS]  # InnoDB's words
    indexed = [w for w in typed
               if MYSQL_MIN_WORD <= len(w) <= MYSQL_MAX_WORD and w not in MYSQL_STOPWORDS]
    like = compiler.process(_like(element.column, element.q), **kw)
    if not indexed:  # only short words or stopwords: LIKE reads every row, but finds them
        return like
    # Every word a prefix: InnoDB keeps `pulsa_ku` as one word where the query has two.
    terms = " ".join(f"+{w}*" for w in indexed)
    match = (f"MATCH ({compiler.process(element.column, **kw)}) AGAINST "
             f"({compiler.process(bindparam(None, terms), **kw)} IN BOOLEAN MODE)")
    if [element.q.strip().lower()] == indexed:
        return match  # one plain word: every row FULLTEXT finds holds it as LIKE would
    # FULLTEXT finds the rows with every word; LIKE on those few keeps the words' order
    # and the short words, as the search always did.
    return f"({match} AND {like})"


@compiles(_Matches, "postgresql")
def _compile_postgresql(element, compiler, **kw):
    ws = element.words
    if not ws:
        return _compile_like(element, compiler, **kw)
    # The same expression as the GIN index of migration 0009, so that the index serves.
    vector = func.to_tsvector(literal_column("'simple'"), element.column)
    query = func.to_tsquery(literal_column("'simple'"), bindparam(None, " <-> ".join(ws) + ":*"))
    return compiler.process(vector.op("@@")(query), **kw)


def matches(column, q: str):
    """The condition: `column` (messages.text, contacts.name or tickets.subject) holds
    the words of `q`."""
    return _Matches(column, q)


def _number(q: str) -> int | None:
    """A ticket number as the customer quotes it: 12, #12."""
    return reader.as_id(q.strip().lstrip("#"))


def _contact_ids(q: str):
    return select(Contact.id).where(matches(Contact.__table__.c.name, q))


def tickets_matching(q: str, country: str):
    """The condition on Ticket for the queue's search box."""
    phone = normalise(q, country)
    number = _number(q)  # a ticket number, as the customer quotes it
    if phone:
        by_phone = Ticket.contact_id.in_(select(Contact.id).where(Contact.phone == phone))
        # 12345 reads as a (short) phone number too: it is also ticket 12345.
        return by_phone if number is None else or_(by_phone, Ticket.id == number)
    # One IN over the union of what each index found: the database starts from the few
    # matches (then the list's own filters and order) rather than reading the tickets in
    # the list's order and asking each about every index, which an OR of conditions made
    # MariaDB do (90 ms for a name that no open ticket has, at 100,000 tickets).
    matched = Ticket.__table__.alias("matched")
    found = [
        select(Message.ticket_id.label("id")).where(matches(Message.__table__.c.text, q)),
        select(matched.c.id).where(matches(matched.c.subject, q)),
        select(matched.c.id).where(matched.c.contact_id.in_(_contact_ids(q))),
    ]
    if number is not None:
        found.append(select(matched.c.id).where(matched.c.id == number))
    ids = union_all(*found).subquery("found")
    return Ticket.id.in_(select(ids.c.id))


def contacts_matching(q: str, country: str):
    """The condition on Contact for the contact list's search box."""
    phone = normalise(q, country)
    if phone:
        return Contact.phone == phone
    return matches(Contact.__table__.c.name, q)


# The tables whose size decides the plans of the lists and the search.
PLANNED_TABLES = ("tickets", "messages", "contacts", "ticket_events", "orders", "payments",
                  "calls", "audit_log")


def refresh_statistics(session) -> list[str]:
    """Let the planner know the tables' sizes again where they changed by more than a
    tenth since it last learnt them, so that a list or a search keeps the index that fits
    what the tables hold now (the daemon runs this hourly). SQLite keeps no statistics by
    itself; MariaDB and PostgreSQL keep their own. Returns the tables analysed."""
    if session.get_bind().dialect.name != "sqlite":
        return []
    conn = session.connection()
    known = {}
    if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
        # The first number of each row is the rows the table had at its last ANALYZE.
        known = dict(conn.exec_driver_sql(
            "SELECT tbl, max(CAST(stat AS INTEGER)) FROM sqlite_stat1 GROUP BY tbl").all())
    stale = []
    for name in PLANNED_TABLES:
        rows = conn.exec_driver_sql(f"SELECT max(rowid) FROM {name}").scalar() or 0
        before = known.get(name)
        if (before is None and rows >= 1000) or (before and abs(rows - before) > before / 10):
            conn.exec_driver_sql(f"ANALYZE {name}")  # about half a second at 1M texts
            stale.append(name)
    return stale
