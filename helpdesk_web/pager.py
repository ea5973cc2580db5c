"""One page of a list by id cursor, for the JSON API and the operator's screens alike.

Lists are newest first. `before=ID` pages back in time and `after=ID` forward; `next` is
the value to pass again in the same parameter for the following page, None at the end.
`limit` is the page's size. All three are bounded (helpdesk_web.bounds).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for

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
