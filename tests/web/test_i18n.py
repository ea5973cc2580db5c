"""Every string the UI shows has its Indonesian, and the compiled catalogue is current."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import helpdesk_web

PACKAGE = Path(helpdesk_web.__file__).parent
CATALOGUE = PACKAGE / "translations" / "id" / "LC_MESSAGES"
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def _catalogue(name: str):
    with open(CATALOGUE / name, "rb") as f:
        return read_mo(f) if name.endswith(".mo") else read_po(f)


def _extracted() -> dict[str, str]:
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(PACKAGE), METHODS):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, filename)
    return found


def test_every_ui_string_has_its_indonesian():
    po = _catalogue("messages.po")
    missing = [f"{where}: {msgid!r}" for msgid, where in sorted(_extracted().items())
               if not (po.get(msgid) and po.get(msgid).string)]
    assert not missing, "untranslated (run `make translations`, fill in msgstr):\n" + \
        "\n".join(missing)


def test_the_compiled_catalogue_matches_the_source():
    po, mo = _catalogue("messages.po"), _catalogue("messages.mo")
    expected = {m.id: m.string for m in po if m.id and m.string}
    compiled = {m.id: m.string for m in mo if m.id}
    assert compiled == expected, "run `make translations` to compile messages.po"
