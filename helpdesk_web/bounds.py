"""What a request may carry: a body of at most MAX_BODY, and ids and numbers in range.

Out of range is the client's mistake and is answered as one, with a sentence: 404 for an
id in the path, 400 for a number in the query or the JSON body, 413 for a body over the
limit; never a database error (a 20-digit id overflows SQLite's driver) or a 500.
"""
from __future__ import annotations

import json

from flask import abort, request
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

# Ids are INT columns, signed 32 bits on MariaDB (SQLite would take 64): one bound on both
# databases, so a request behaves the same on either.
MAX_ID = 2**31 - 1
MAX_BODY = 1024 * 1024  # a form or a JSON body; the longest real one is a 1,530-character SMS
_MAX_DIGITS = 32  # int() of a longer string costs time, and nothing in range is that long


def parse_int(text: str, low: int, high: int) -> int | None:
    """`text` as a whole number in low..high (ASCII digits, a leading minus), else None."""
    text = text.strip()
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DIGITS:
        return None  # "²".isdigit() is true, and int() refuses it
    value = int(text)
    return value if low <= value <= high else None


class IdConverter(BaseConverter):
    """`<id:name>` in a route: a row id from 1 to MAX_ID, else a 404 that says so."""
    regex = r"-?\d+"  # a negative id is answered with the sentence too, not a bare 404
    weight = 50

    def to_python(self, value: str) -> int:
        number = parse_int(value, 1, MAX_ID)
        if number is None:
            # Raised from the URL map, so no view and no database sees the value.
            raise NotFound(f"{value[:24]} is not an id: ids are whole numbers from 1 to {MAX_ID}")
        return number

    def to_url(self, value) -> str:
        return str(int(value))


def int_arg(name: str, default: int | None = None, *, low: int = 1, high: int = MAX_ID):
    """The whole-number query argument `name` in low..high, `default` when it is absent."""
    value = request.args.get(name, "")
    if value == "":
        return default
    number = parse_int(value, low, high)
    if number is None:
        abort(400, f"{name} must be a whole number from {low} to {high}, not {value[:24]!r}")
    return number


def json_object(example: str, *, required: bool = True) -> dict:
    """The request's JSON object ({} for no body when not `required`), else a 400 that
    shows `example`."""
    if not required and not request.get_data(cache=True):
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # [[[[...]]]] nested deeper than the parser goes
        data = None
    if not isinstance(data, dict):
        abort(400, f"send a JSON object such as {example}")
    return data


def json_int(data: dict, name: str, *, low: int = 1, high: int = MAX_ID) -> int | None:
    """The whole-number field `name` of a JSON object in low..high, None when absent."""
    value = data.get(name)
    if value is None:
        return None
    # bool is an int to Python, but true is not an id to anyone
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        abort(400, f'"{name}" must be a whole number from {low} to {high}, '
                   f"not {json.dumps(value)[:24]}")
    return value


NUL_REFUSED = ("the request holds a NUL character (U+0000), which no text field takes; "
               "remove it and send again")


def refuse_nul() -> None:
    """Before every request: a NUL anywhere in the query, the form or the JSON body is a
    400 with words. PostgreSQL's text cannot hold one, and on every database alike what
    an operator or a client sends is stored as sent or not at all."""
    values = [text for pair in request.args.items(multi=True) for text in pair]
    values += [v for v in (request.view_args or {}).values() if isinstance(v, str)]
    if request.method != "GET":
        values += [text for pair in request.form.items(multi=True) for text in pair]
        if request.is_json:
            try:
                stack = [request.get_json(silent=True)]
            except RecursionError:  # json_object answers it
                stack = []
            while stack:  # a loop, not recursion: the parser took deeper nesting than we could
                item = stack.pop()
                if isinstance(item, dict):
                    values.extend(item)
                    stack.extend(item.values())
                elif isinstance(item, list):
                    stack.extend(item)
                elif isinstance(item, str):
                    values.append(item)
    if any("\x00" in value for value in values):
        abort(400, NUL_REFUSED if request.path.startswith("/api/") else _(
            "The form holds a NUL character (U+0000), which no field takes: remove it and "
            "send again."))


def too_large(limit: int) -> str:
    return (f"the request is larger than {limit / 1024 / 1024:g} MiB, the most this server "
            "takes; send less")
