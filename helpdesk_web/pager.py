"""One page of a list by id cursor, for the JSON API and the operator's screens alike.

Lists are newest first. `before=ID` pages back in time and `after=ID` forward; `next` is
the value to pass again in the same parameter for the following page, None at the end.
`limit` is the page's size. All three are bounded (helpdesk_web.bounds).

A list in another order (the queue: who waits longest first) pages by a key instead
(page_by_key): the cursor names a row's values of the order's columns, `before=KEY` goes
down the list and `after=KEY` back up.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flask import abort, request, url_for
from flask_babel import gettext as _
from sqlalchemy import DateTime, tuple_

from helpdesk_web.bounds import MAX_ID, int_arg
from helpdesk_web.db import get_db

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CURSORS = ("before", "after")


@dataclass(frozen=True)
class Page:
    items: list
    next: int | None  # the cursor for the following page, in the parameter this one used
    forward: bool  # paged with `after`
    cursor: bool  # a cursor was given: this may not be the newest page
    start: int | None = None  # that cursor

    @property
    def older(self) -> int | None:
        """The `before` for the page back in time from this one, None at the oldest."""
        if not self.forward:
            return self.next
        return self.items[-1].id if self.items else None

    @property
    def newer(self) -> int | None:
        """The `after` for the page ahead of this one, None on the newest."""
        if self.forward:
            return self.next
        return self.items[0].id if self.items and self.cursor else None

    @property
    def span(self) -> tuple[int, int | None]:
        """The ids (both ends left out; None: no upper end) among which a page must have
        been given every row of its list to be right: from its cursor to its last row, or
        to the end of the list when there is no next page."""
        if self.forward:
            return self.start, None if self.next is None else self.next + 1
        return self.next or 0, self.start


def limit() -> int:
    """The page size asked for."""
    return int_arg("limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)


def page(query, column) -> Page:
    """One page of `query` (a select of one entity, not yet ordered) by its id `column`."""
    size = limit()
    # 0 is a cursor too: after=0 reads the whole history forward from its start.
    before, after = (int_arg(name, low=0, high=MAX_ID) for name in CURSORS)
    if before is not None:
        query = query.where(column < before)
    if after is not None:
        # Forward from the cursor in id order, so no row between pages is skipped.
        query = query.where(column > after).order_by(column.asc())
    else:
        query = query.order_by(column.desc())
    rows = get_db().scalars(query.limit(size + 1)).unique().all()
    more = len(rows) > size
    rows = rows[:size]
    cursor = rows[-1].id if more else None
    if after is not None:
        rows.reverse()
    return Page(rows, cursor, after is not None, before is not None or after is not None,
                after if after is not None else before)


def page_url(**cursor) -> str:
    """This list's address with its filters kept and another cursor, for a page link."""
    args = {k: v for k, v in request.args.items() if k not in CURSORS}
    return url_for(request.endpoint, **(request.view_args or {}), **{**args, **cursor})


@dataclass(frozen=True)
class KeyPage:
    items: list
    older: str | None  # the `before` for the page further down the list
    newer: str | None  # the `after` for the page above this one
    cursor: bool  # a cursor was given: this may not be the first page


_KEY_PART = re.compile(r"\d{1,20}")
_TIME = "%Y%m%d%H%M%S%f"


def _no_such_page(name: str, raw: str):
    abort(400, _("%(name)s=%(value)s is no page of this list; open the list again.",
                 name=name, value=raw[:40]))


def key_of(row, columns) -> str:
    """A row's cursor: its values of `columns`, dot-separated (times as digits)."""
    values = (getattr(row, c.key) for c in columns)
    return ".".join(v.strftime(_TIME) if isinstance(v, dt.datetime) else str(int(v))
                    for v in values)


def _parse_key(name: str, columns) -> tuple | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    parts = raw.split(".")
    if len(parts) != len(columns) or not all(_KEY_PART.fullmatch(p) for p in parts):
        _no_such_page(name, raw)
    try:
        return tuple(dt.datetime.strptime(p, _TIME) if isinstance(c.type, DateTime)
                     else min(int(p), MAX_ID) for p, c in zip(parts, columns, strict=True))
    except ValueError:
        _no_such_page(name, raw)


def page_by_key(query, columns) -> KeyPage:
    """One page of `query` (a select of one entity, not yet ordered) in the ascending
    order of `columns`, the last of which is unique (the id), so no row is skipped or
    shown twice between pages however the rows before the cursor change."""
    size = limit()
    before, after = (_parse_key(name, columns) for name in CURSORS)
    key = tuple_(*columns)
    if after is not None:
        query = query.where(key < tuple_(*after)).order_by(*(c.desc() for c in columns))
    else:
        if before is not None:
            query = query.where(key > tuple_(*before))
        query = query.order_by(*(c.asc() for c in columns))
    rows = get_db().scalars(query.limit(size + 1)).unique().all()
    more = len(rows) > size
    rows = rows[:size]
    if after is not None:
        rows.reverse()
        newer = key_of(rows[0], columns) if more else None
        older = key_of(rows[-1], columns) if rows else request.args["after"]
    else:
        older = key_of(rows[-1], columns) if more else None
        newer = key_of(rows[0], columns) if before is not None and rows else None
    return KeyPage(rows, older, newer, before is not None or after is not None)
