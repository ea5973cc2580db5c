"""The SIM credit in the operators' USSD answers (tests/data/ussd-answers.tsv)."""
from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from gateway.sms.ussd import read_balance

TABLE = pathlib.Path(__file__).parent.parent / "data" / "ussd-answers.tsv"


def _rows():
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        operator, answer, balance, expiry = line.split("\t")
        yield pytest.param(answer, None if balance == "-" else int(balance),
                           None if expiry == "-" else dt.date.fromisoformat(expiry),
                           id=f"{operator}: {answer[:40]}")


@pytest.mark.parametrize(("answer", "balance", "expiry"), list(_rows()))
def test_each_operator_answer_is_read(answer, balance, expiry):
    assert read_balance(answer) == (balance, expiry)


@pytest.mark.parametrize("answer", ["", None, "OK", "Rp 12.500", "Pulsa: 999999999999"])
def test_what_is_not_a_balance_gives_none(answer):
    assert read_balance(answer)[0] is None
