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

The queue's word search is a page, newest ticket first: page_of_tickets() asks the index
for the newest texts and subjects only, as many as a page needs, and checks that no
older one could belong on the page (else it asks again from where one could), so a word
in a tenth of the texts costs a page's worth of reading, not 100,000 matches.
"""
from __future__ import annotations

import re

from sqlalchemy import Boolean, and_, bindparam, func, literal_column, or_, select, table, union_all
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
    """`column` holds the words of `q`: compiled per dialect (see the module docstring).
    With `since`, only rows numbered `since` or more count (the newest texts)."""
    type = Boolean()
    inherit_cache = False  # the query text depends on `q`: no statement caching

    def __init__(self, column, q: str, since: int | None = None):
        self.column, self.q, self.words, self.since = column, q, words(q), since

    def self_group(self, against=None):
        # Already a whole condition (each dialect's text is bracketed where it needs it):
        # no `= 1` around it on databases without a boolean type, which hid the indexes.
        return self


def _like(column, q: str):
    return column.contains(q, autoescape=True)


def _since(element, condition):
    """`condition`, on the rows numbered `element.since` or more when it is set."""
    if element.since is None:
        return condition
    return and_(element.column.table.c.id >= element.since, condition)


@compiles(_Matches)
def _compile_like(element, compiler, **kw):
    return compiler.process(_since(element, _like(element.column, element.q)), **kw)


def _fts_phrase(ws: list[str]) -> str:
    """One FTS5 phrase of the words, every one quoted (no word holds a quote), the last
    one a prefix when long enough to be worth it."""
    return '"' + " ".join(ws) + '"' + ("*" if len(ws[-1]) >= SQLITE_MIN_PREFIX else "")


@compiles(_Matches, "sqlite")
def _compile_sqlite(element, compiler, **kw):
    ws = element.words
    if not ws:  # nothing an index holds: punctuation alone, read as it was typed
        return _compile_like(element, compiler, **kw)
    phrase = _fts_phrase(ws)
    column = element.column
    searched = getattr(column.table, "element", column.table)  # the table behind an alias
    fts = FTS_TABLES[(searched.name, column.name)]
    rowids = (select(literal_column("rowid")).select_from(table(fts))
              .where(literal_column(fts).op("MATCH")(bindparam(None, phrase))))
    if element.since is not None:  # FTS5 seeks to the rowid: the older matches are not read
        rowids = rowids.where(literal_column("rowid") >= element.since)
    pk = column.table.c.id
    return compiler.process(pk.in_(rowids), **kw)


@compiles(_Matches, "mysql")
@compiles(_Matches, "mariadb")
def _compile_mysql(element, compiler, **kw):
    typed = re.findall(r"\w+", element.q.lower())[:MAX_WORDS]  # InnoDB's words
    indexed = [w for w in typed
               if MYSQL_MIN_WORD <= len(w) <= MYSQL_MAX_WORD and w not in MYSQL_STOPWORDS]
    like = compiler.process(_like(element.column, element.q), **kw)
    since = "" if element.since is None else \
        f"{compiler.process(element.column.table.c.id >= element.since, **kw)} AND "
    if not indexed:  # only short words or stopwords: LIKE reads every row, but finds them
        return f"({since}{like})"
    if since:
        # The newest rows only: FULLTEXT would list every match in the table first, so
        # each row from `since` on is asked as FULLTEXT would answer: LIKE, then each
        # word at the start of a word (InnoDB's words are letters, digits and `_`).
        starts = " AND ".join(
            f"{compiler.process(element.column, **kw)} REGEXP "
            f"{compiler.process(bindparam(None, '(^|[^[:alnum:]_])' + w), **kw)}"
            for w in indexed)
        return f"({since}{like} AND {starts})"
    # Every word a prefix: InnoDB keeps `pulsa_ku` as one word where the query has two.
    terms = " ".join(f"+{w}*" for w in indexed)
    match = (f"MATCH ({compiler.process(element.column, **kw)}) AGAINST "
             f"({compiler.process(bindparam(None, terms), **kw)} IN BOOLEAN MODE)")
    if [element.q.strip().lower()] == indexed:
        # one plain word: every row FULLTEXT finds holds it as LIKE would
        return f"({since}{match})" if since else match
    # FULLTEXT finds the rows with every word; LIKE on those few keeps the words' order
    # and the short words, as the search always did.
    return f"({since}{match} AND {like})"


@compiles(_Matches, "postgresql")
def _compile_postgresql(element, compiler, **kw):
    ws = element.words
    if not ws:
        return _compile_like(element, compiler, **kw)
    # The same expression as the GIN index of migration 0009, so that the index serves.
    vector = func.to_tsvector(literal_column("'simple'"), element.column)
    query = func.to_tsquery(literal_column("'simple'"), bindparam(None, " <-> ".join(ws) + ":*"))
    return compiler.process(_since(element, vector.op("@@")(query)), **kw)


def matches(column, q: str, since: int | None = None):
    """The condition: `column` (messages.text, contacts.name or tickets.subject) holds
    the words of `q`; with `since`, in the rows numbered `since` or more only."""
    return _Matches(column, q, since)


def _number(q: str) -> int | None:
    """A ticket number as the customer quotes it: 12, #12."""
    return reader.as_id(q.strip().lstrip("#"))


def _contact_ids(q: str):
    return select(Contact.id).where(matches(Contact.__table__.c.name, q))


def tickets_matching(q: str, country: str, texts_since: int | None = None,
                     tickets_from: int | None = None):
    """The condition on Ticket for the queue's search box. With `texts_since`, only the
    texts numbered that or more are searched; with `tickets_from`, only the subjects and
    contacts' names of tickets numbered that or more: see page_of_tickets() for when
    that still finds every ticket a page shows."""
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
        select(Message.ticket_id.label("id")).where(
            matches(Message.__table__.c.text, q, texts_since)),
        select(matched.c.id).where(matches(matched.c.subject, q, tickets_from)),
        select(matched.c.id).where(matched.c.contact_id.in_(_contact_ids(q)),
                                   *([] if tickets_from is None
                                     else [matched.c.id >= tickets_from])),
    ]
    if number is not None:
        found.append(select(matched.c.id).where(matched.c.id == number))
    ids = union_all(*found).subquery("found")
    return Ticket.id.in_(select(ids.c.id))


# A page of a word search reads the newest texts only: SQLite's FTS5 walks its rowids
# backwards; PostgreSQL's planner may read the primary key backwards for a common word.
# MariaDB's FULLTEXT lists every match before any ORDER BY or LIMIT (EXPLAIN: fulltext,
# Using filesort; about 10 us a match at 1M texts: a second for a word in a tenth of
# them), so there the newest rows are read by their ids and asked one by one (about
# 0.6 us a row), where that is the cheaper way: see _newest_mysql().
STOPS_EARLY = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})
WIDEST_SPAN = 10_000  # tickets whose first text is looked up (index only, ~2 ms a 2,000)
MYSQL_FIRST_ROWS = 4_000  # the newest rows read first, to tell a common word (~3 ms)
MYSQL_ROW_VS_MATCH = 16    # a FULLTEXT match costs about this many rows read one by one


def _newest(session, column, q: str, count: int) -> int | None:
    """The id of the `count`-th newest row whose `column` holds the words of `q`, None
    when fewer rows hold them (then reading them all is cheap)."""
    ws = words(q)
    if session.get_bind().dialect.name == "sqlite" and ws:
        # Straight from FTS5 in rowid order: through the table it would list every match.
        fts = FTS_TABLES[(column.table.name, column.name)]
        return session.connection().exec_driver_sql(
            f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (_fts_phrase(ws), count - 1)).scalar()
    if session.get_bind().dialect.name in ("mysql", "mariadb"):
        return _newest_mysql(session, column, q, count)
    pk = column.table.c.id
    return session.scalar(select(pk).where(matches(column, q)).order_by(pk.desc())
                          .offset(count - 1).limit(1))


def _newest_mysql(session, column, q: str, count: int) -> int | None:
    """_newest() on MariaDB, by reading the newest rows one by one where a word is
    common enough that this is cheaper than FULLTEXT listing all its matches; None
    where it is not (then FULLTEXT serves the page, its matches being few)."""
    pk = column.table.c.id
    top = session.scalar(select(func.max(pk))) or 0

    def newest(rows: int) -> list[int]:
        return list(session.scalars(select(pk).where(matches(column, q, since=top - rows + 1))
                                    .order_by(pk.desc()).limit(count)))

    found = newest(MYSQL_FIRST_ROWS)
    if len(found) == count:
        return found[-1]
    if not found or top <= MYSQL_FIRST_ROWS:
        return None  # rare, or every row read: FULLTEXT finds the few at once
    share = len(found) / MYSQL_FIRST_ROWS  # of the rows that hold the words
    rows = int(2 * count / share)  # twice what the share says, for texts that cluster
    if rows / 2 > MYSQL_ROW_VS_MATCH * share * top:
        return None  # FULLTEXT's matches cost less than the rows to read
    found = newest(min(rows, top))
    return found[-1] if len(found) == count else None


def newest_texts(session, q: str, count: int) -> int | None:
    """The id of the `count`-th newest text that holds the words of `q`, None when fewer
    texts hold them."""
    return _newest(session, Message.__table__.c.text, q, count)


_TOO_WIDE = object()


def _first_text(session, above: int, below: int | None, widest: int):
    """The oldest text of the tickets numbered between `above` and `below` (both left
    out; None: no upper end); None when they have none, _TOO_WIDE past `widest` tickets."""
    if below is None:
        below = (session.scalar(select(func.max(Ticket.id))) or 0) + 1
    if below - above - 1 > widest:
        return _TOO_WIDE
    return session.scalar(select(func.min(Message.id))
                          .where(Message.ticket_id > above, Message.ticket_id < below))


def page_of_tickets(session, q: str, country: str, run, read_ahead: int,
                    widest: int = WIDEST_SPAN):
    """The page of tickets that match `q`, reading only the newest texts and tickets
    where the index can stop early, and exactly the page a search of them all gives.

    `run(condition)` returns (page, (above, below)): the page of tickets found with the
    condition, and the span of ticket numbers (both ends left out, None: no upper end) in
    which the page must have found every match to be right: between its cursor and its
    last row, or to the end of the list when it is the last page. A page found among the
    texts numbered M or more and the tickets numbered T or more is right when no ticket
    of that span has a text older than M and the span starts at T or later. Otherwise it
    is found again from that span's first text and first ticket: then it is right, since
    the matches found only grow and so the span only narrows.
    """
    if session.get_bind().dialect.name not in STOPS_EARLY or normalise(q, country):
        return run(tickets_matching(q, country))[0]
    since = newest_texts(session, q, read_ahead)
    start = _newest(session, Ticket.__table__.c.subject, q, read_ahead)  # by subject
    if since is None and start is None:
        return run(tickets_matching(q, country))[0]
    found, (above, below) = run(tickets_matching(q, country, since, start))
    right = True
    if start is not None and above + 1 < start:
        start, right = above + 1, False
    if since is not None:
        first = _first_text(session, above, below, widest)
        if first is _TOO_WIDE:
            since, right = None, False
        elif first is not None and first < since:
            since, right = first, False
    if right:
        return found
    return run(tickets_matching(q, country, since, start))[0]


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
