"""The Asterisk files in dialplans/ agree with the code that talks to them.

Every AGI URL the dialplan uses is a script the FastAGI server runs and carries the
server's secret, read before any AGI on every channel; every context the code or another
file names exists; every HELPDESK_* variable the dialplan reads is set
by the dialplan or by the server, and every variable the server reads is set by the
dialplan or by Asterisk; the manager user has exactly what the AMI client uses; no file
holds a password. Syntax is checked as Asterisk's config parser reads it.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import secret
from gateway.config import Config
from gateway.desk import calls
from gateway.voice import ami
from gateway.voice import fastagi as agi

DIALPLANS = Path(__file__).resolve().parents[2] / "dialplans"
CONF_FILES = ("extensions.conf", "pjsip.conf", "queues.conf", "manager.conf")

# Variables Asterisk itself sets that the dialplan or the server read.
ASTERISK_VARIABLES = {"EXTEN", "UNIQUEID", "AGISTATUS", "QUEUESTATUS", "DIALSTATUS",
                      "HANGUPCAUSE", "ARG1", "MEMBERINTERFACE"}
APPS = {"Set", "Goto", "GotoIf", "GotoIfTime", "Gosub", "Return", "NoOp", "Ringing", "AGI",
        "Log", "Dial", "Queue", "Hangup"}
SECRET_VARIABLE = "${HELPDESK_AGI_SECRET}"
SECRET_CONTEXT = "helpdesk-agi-secret"


def read_conf(name: str) -> list[tuple[int, str, str | None, str | None]]:
    """(line, kind, key, value) as Asterisk's config.c reads a file: ';' comments,
    [section](templates), key = value / key => value, #include / #tryinclude."""
    out = []
    for lineno, raw in enumerate((DIALPLANS / name).read_text().splitlines(), 1):
        line = re.sub(r"(?<!\\);.*", "", raw).strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.fullmatch(r"#(include|tryinclude)\s+(\S+)", line)
            assert m, f"{name}:{lineno}: bad directive {raw!r}"
            out.append((lineno, "include", m.group(1), m.group(2)))
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9_.+-]+)\](?:\(([^)]*)\))?", line)
        if m:
            out.append((lineno, "section", m.group(1), m.group(2)))
            continue
        m = re.fullmatch(r"([^=]+?)\s*=>?\s*(.*)", line)
        assert m, f"{name}:{lineno}: not 'key = value': {raw!r}"
        out.append((lineno, "value", m.group(1), m.group(2)))
    return out


def sections(name: str) -> dict[str, list[dict]]:
    """Section name -> [{'templates': [...], 'template': bool, key: [values]}] (a name
    may repeat: PJSIP endpoint, aor and auth share one)."""
    result: dict[str, list[dict]] = {}
    current = None
    for lineno, kind, key, value in read_conf(name):
        if kind == "section":
            opts = [o.strip() for o in (value or "").split(",") if o.strip()]
            current = {"template": "!" in opts, "templates": [o for o in opts if o != "!"],
                       "line": lineno}
            result.setdefault(key, []).append(current)
        elif kind == "value":
            assert current is not None, f"{name}:{lineno}: a value outside any section"
            current.setdefault(key.strip(), []).append(value)
    return result


class Step:
    def __init__(self, context, exten, app, args, label):
        self.context, self.exten, self.app, self.args, self.label = (
            context, exten, app, args, label)


def dialplan() -> list[Step]:
    steps, context, exten = [], None, None
    for lineno, kind, key, value in read_conf("extensions.conf"):
        if kind == "section":
            context = key
            continue
        if kind != "value":
            continue
        key = key.strip()
        if key == "exten":
            exten, _, rest = value.partition(",")
        else:
            assert key == "same", f"extensions.conf:{lineno}: unexpected {key}"
            rest = value
        prio, _, app_text = rest.partition(",")
        m = re.fullmatch(r"(\w+)\((.*)\)", app_text.strip())
        assert m, f"extensions.conf:{lineno}: not App(args)"
        label = re.fullmatch(r"(?:\d+|n)(?:\(([\w-]+)\))?", prio.strip()).group(1)
        steps.append(Step(context, exten.strip(), m.group(1), m.group(2), label))
    return steps


def split_args(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


@pytest.fixture(scope="module")
def steps():
    return dialplan()


def contexts(steps):
    return {s.context for s in steps}


def agi_urls(steps) -> list[str]:
    """Every FastAGI URL: AGI() steps and Queue()'s AGI argument (its 6th)."""
    urls = []
    for s in steps:
        if s.app == "AGI":
            urls.append(split_args(s.args)[0])
        elif s.app == "Queue":
            args = split_args(s.args)
            if len(args) > 5 and args[5]:
                urls.append(args[5])
    return urls


def test_only_known_applications(steps):
    assert {s.app for s in steps} <= APPS


def asterisk_header(url: str, value: str) -> dict:
    """What res_agi sends for the URL once ${HELPDESK_AGI_SECRET} is `value`:
    agi_network_script is everything after the host's '/', agi_request the whole."""
    url = url.replace(SECRET_VARIABLE, value)
    return {"agi_network": "yes", "agi_network_script": url[len("agi://"):].partition("/")[2],
            "agi_request": url}


def test_every_agi_url_is_a_script_the_server_runs_on_the_configured_address(steps):
    host, _, port = Config().agi_listen.rpartition(":")
    scripts = set()
    for url in agi_urls(steps):
        parts = urlsplit(url)
        assert parts.scheme == "agi" and (parts.hostname, str(parts.port)) == (host, port), url
        request = agi.AGIRequest(asterisk_header(url, "0" * 64))
        assert request.script in agi.SCRIPTS, url
        assert hasattr(agi.FastAGIProtocol, "script_" + request.script)
        scripts.add(request.script)
    assert scripts == set(agi.SCRIPTS)  # and each script is used


def test_every_agi_url_passes_the_secret(steps, tmp_path):
    value = secret.ensure(str(tmp_path / "agi.secret")).decode()
    urls = agi_urls(steps)
    assert len(urls) == 4  # incoming, Queue's answered, U()'s answered, hangup
    for url in urls:
        assert parse_qs(urlsplit(url).query) == {"secret": [SECRET_VARIABLE]}, url
        assert agi.AGIRequest(asterisk_header(url, value)).secret == value, url


def test_the_secret_is_read_before_anything_on_each_channel_that_runs_an_agi(steps):
    """Calls start in helpdesk-incoming (s, where the DID extensions go) and in
    helpdesk-outgoing (Originate); helpdesk-answered runs on channels they dial, which
    inherit the variable; the hangup handler on the channel itself."""
    starts = {(s.context, s.exten) for s in steps if s.context == "helpdesk-outgoing"}
    starts.add(("helpdesk-incoming", "s"))
    for context, exten in starts:
        apps = [(s.app, s.args) for s in steps if (s.context, s.exten) == (context, exten)]
        gosub = apps.index(("Gosub", f"{SECRET_CONTEXT},s,1"))
        push = next(i for i, (app, args) in enumerate(apps) if "hangup_handler_push" in args)
        agis = [i for i, (app, args) in enumerate(apps)
                if app in ("AGI", "Queue", "Dial")]
        assert gosub < push and all(gosub < i for i in agis), (context, exten)
    (read,) = [s for s in steps if s.context == SECRET_CONTEXT and s.app == "Set"]
    name = read.args.split("=", 1)[0]
    assert name == "__HELPDESK_AGI_SECRET"  # __: inherited by the channels Dial/Queue make
    assert [s.app for s in steps if s.context == SECRET_CONTEXT] == ["Set", "Return"]


def secret_filter(steps) -> tuple[str, str]:
    """(the characters FILTER lets through, the FILE path) of the secret's Set."""
    (read,) = [s for s in steps if s.context == SECRET_CONTEXT and s.app == "Set"]
    m = re.fullmatch(r"__HELPDESK_AGI_SECRET=\$\{FILTER\(([^,]+),\$\{FILE\(([^,)]+)\)\}\)\}",
                     read.args)
    assert m, read.args
    allowed = re.sub(r"(.)-(.)", lambda r: "".join(map(chr, range(ord(r.group(1)),
                                                                  ord(r.group(2)) + 1))),
                     m.group(1))
    return allowed, m.group(2)


def test_the_secret_file_passes_the_dialplans_filter_whole(steps, tmp_path):
    allowed, path = secret_filter(steps)
    assert Path(path).is_absolute()  # Asterisk's working directory is not the helpdesk's
    made = tmp_path / "agi.secret"
    value = secret.ensure(str(made), mode=0o640)
    raw = made.read_bytes().decode()
    assert "".join(ch for ch in raw if ch in allowed) == value.decode()  # only the newline
    assert "\n" not in allowed  # a newline in the URL would end the AGI header early


def test_every_jump_and_gosub_goes_to_an_existing_place(steps):
    names = contexts(steps)
    labels = {(s.context, s.label) for s in steps if s.label}
    for s in steps:
        targets = []
        if s.app in ("Goto", "Gosub"):
            targets.append(split_args(s.args))
        elif s.app in ("GotoIf", "GotoIfTime"):
            dest = s.args.rpartition("?")[2]
            targets += [[d] for d in dest.split(":") if d]
        elif s.app == "Set" and "hangup_handler_push" in s.args:
            targets.append(split_args(s.args.split("=", 1)[1]))
        elif s.app == "Dial":
            for m in re.finditer(r"U\(([\w-]+)\^", s.args):  # U(context^args): s,1
                targets.append([m.group(1), "s", "1"])
        for target in targets:
            target = [t.strip() for t in target]
            if len(target) == 1:
                assert (s.context, target[0]) in labels, f"{s.context}: no label {target}"
            else:
                assert target[0] in names, f"{s.context}: no context {target[0]}"


def test_contexts_the_code_and_other_files_name_exist(steps):
    names = contexts(steps)
    assert ami.ClickToCall.context in names
    for section_list in sections("pjsip.conf").values():
        for section in section_list:
            for context in section.get("context", []):
                assert context in names, f"pjsip.conf names a missing context {context}"
    queue_names = {s.args.split(",")[0] for s in steps if s.app == "Queue"}
    assert queue_names <= set(sections("queues.conf"))


def test_every_variable_read_is_set_somewhere(steps):
    text = (DIALPLANS / "extensions.conf").read_text()
    set_in_dialplan = set()
    for s in steps:
        if s.app == "Set":
            set_in_dialplan.add(s.args.split("=", 1)[0].lstrip("_"))
    set_by_server = {name for name, _ in agi.variables_for(calls.CallerInfo(
        1, "+62", 1, "x", "1", "op", "PJSIP/1", False))}
    assert set(agi.VARIABLES) <= set_by_server
    known = set_in_dialplan | set_by_server | ASTERISK_VARIABLES
    body = "\n".join(re.sub(r";.*", "", line) for line in text.splitlines())
    read = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", body))
    assert read <= known | {"CALLERID"}, read - known
    # what the server reads from the channel
    for name in agi.HANGUP_READS:
        assert name in set_in_dialplan or name in ASTERISK_VARIABLES, name
    # the dialplan really uses what the server sets for it
    for name in ("HELPDESK_OPERATOR_DIAL",):
        assert "${" + name + "}" in body


def test_member_interface_needs_setinterfacevar():
    (queue,) = sections("queues.conf")["helpdesk"]
    assert queue["setinterfacevar"] == ["yes"]


def test_dial_strings_reach_pjsip_objects(steps):
    pjsip = sections("pjsip.conf")
    for s in steps:
        if s.app == "Dial":
            for endpoint in re.findall(r"@([\w-]+)", s.args):
                types = {t for sec in pjsip[endpoint] for t in resolved(pjsip, sec, "type")}
                assert {"endpoint", "aor"} <= types, endpoint


def resolved(pjsip, section, key):
    values = list(section.get(key, []))
    for name in section["templates"]:
        for template in pjsip[name]:
            if template["template"]:
                values += resolved(pjsip, template, key)
    return values


def test_pjsip_objects_have_types_and_templates_exist():
    pjsip = sections("pjsip.conf")
    for name, section_list in pjsip.items():
        for section in section_list:
            for template in section["templates"]:
                assert any(t["template"] for t in pjsip.get(template, [])), template
            if not section["template"]:
                assert resolved(pjsip, section, "type"), f"[{name}] has no type"


def test_add_operator_script_makes_valid_operators(tmp_path):
    out = tmp_path / "pjsip_operators.conf"
    script = DIALPLANS / "add-operator.sh"
    first = subprocess.run(["sh", str(script), "101", str(out)], capture_output=True,
                           text=True, check=True)
    subprocess.run(["sh", str(script), "102", str(out)], check=True, capture_output=True)
    again = subprocess.run(["sh", str(script), "101", str(out)], capture_output=True)
    assert again.returncode == 1
    bad = subprocess.run(["sh", str(script), "1;rm", str(out)], capture_output=True)
    assert bad.returncode == 2
    text = out.read_text()
    passwords = re.findall(r"password = (\w+)", text)
    assert len(passwords) == 2 and len(set(passwords)) == 2 and len(passwords[0]) == 32
    assert passwords[0] in first.stdout
    templates = {n for n, secs in sections("pjsip.conf").items()
                 if any(s["template"] for s in secs)}
    for used in re.findall(r"\]\(([\w-]+)\)", text):
        assert used in templates
    assert calls.extension_of("PJSIP/101-00000001") == "101"


def test_manager_user_is_least_privilege_and_local():
    manager = sections("manager.conf")
    (general,) = manager["general"]
    assert general["bindaddr"] == ["127.0.0.1"]
    (user,) = manager["helpdesk"]
    # what the AMI client uses: Login (no privilege), Ping (none), Originate into a
    # dialplan context (originate), OriginateResponse events (call)
    assert user["read"] == ["call"] and user["write"] == ["originate"]
    assert user["deny"] == ["0.0.0.0/0.0.0.0"]
    assert user["permit"] == ["127.0.0.1/255.255.255.255"]
    assert "secret" not in user
    includes = [v for _, kind, _, v in read_conf("manager.conf") if kind == "include"]
    assert includes == ["helpdesk/manager_secret.conf"]


def test_no_file_holds_a_password():
    for name in CONF_FILES:
        for lineno, kind, key, _value in read_conf(name):
            if kind == "value":
                assert key.strip() not in ("secret", "password"), f"{name}:{lineno}"


def test_every_file_is_well_formed():
    for name in CONF_FILES:
        assert read_conf(name)
    # extensions.conf: priorities start at 1 per extension, labels unique per extension
    seen = {}
    for lineno, kind, key, value in read_conf("extensions.conf"):
        if kind == "section":
            context = key
        elif kind == "value" and key.strip() == "exten":
            exten, _, rest = value.partition(",")
            assert (context, exten) not in seen, f"line {lineno}: {exten} defined twice"
            seen[(context, exten)] = lineno
            assert rest.split(",")[0].strip() == "1", f"line {lineno}: must start at 1"


def test_readme_documents_wiring_each_file():
    readme = (DIALPLANS / "README.md").read_text()
    for name in CONF_FILES:
        assert name in readme
    assert "#include helpdesk/extensions.conf" in readme
    assert "manager_secret.conf" in readme and "add-operator.sh" in readme
