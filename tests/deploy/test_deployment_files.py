"""Checks on the deployment files: systemd units, LTSP kiosk, Asterisk dialplan.

These files are not Python, so nothing else exercises them.  The tests parse
them the way the consuming program would and assert what matters in
production: the daemon runs unprivileged with its modems reachable, the
dialplan only jumps to contexts that exist and talks FastAGI to the local
daemon only, and the kiosk script is valid bash that really waits for the
server and reloads after an outage.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.config import Config, ConfigError
from gateway.config import load as load_config
from tests import helpers

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
LTSP = ROOT / "ltsp"
DIALPLANS = ROOT / "dialplans"


# --------------------------------------------------------------------------
# systemd units
# --------------------------------------------------------------------------

def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A small parser with systemd's rules, where configparser has none.

    Keys may repeat (values accumulate, in order); an empty assignment
    resets the list, as for ``ExecStart=``; a trailing backslash continues
    a line; ``#`` and ``;`` start comment lines.
    """
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"line {lineno}: assignment outside a section"
        assert "=" in line, f"line {lineno}: not key=value: {raw!r}"
        key, value = (part.strip() for part in line.split("=", 1))
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key), f"line {lineno}: bad key {key!r}"
        if value == "":
            current[key] = []
        else:
            current.setdefault(key, []).append(value)
    assert not pending, "file ends in a line continuation"
    return sections


def words(values: list[str]) -> list[str]:
    return [word for value in values for word in value.split()]


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key, [])
    assert len(values) == 1, f"{key}= must be set exactly once, got {values}"
    return values[0]


def seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def exec_argv(value: str) -> list[str]:
    argv = shlex.split(value)
    argv[0] = argv[0].lstrip("-@:+!")
    return argv


def systemd_analyze_verify(unit_path: Path, tmp_path: Path) -> None:
    """``systemd-analyze verify`` on a copy whose ExecStart exists here."""
    tmp_path.mkdir(exist_ok=True)
    copy = tmp_path / unit_path.name
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", unit_path.read_text())
    copy.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    # Unknown keys and unparsable values are only warnings (exit code 0),
    # so look for any complaint about our file as well.
    complaints = [
        line for line in (proc.stdout + proc.stderr).splitlines()
        if copy.name in line
    ]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def load_unit(name: str) -> dict[str, dict[str, list[str]]]:
    return parse_unit((SYSTEMD / name).read_text())


def check_common_service(unit, subcommand: str) -> dict[str, list[str]]:
    service = unit["Service"]

    argv = exec_argv(one(service, "ExecStart"))
    assert os.path.isabs(argv[0]) and Path(argv[0]).name == "helpdesk", argv
    assert argv[-1] == subcommand, argv
    assert "--config" in argv
    assert argv[argv.index("--config") + 1] == "/etc/helpdesk/helpdesk.toml"

    user = one(service, "User")
    assert user not in ("root", "0"), "the daemon must not run as root"
    assert user == "helpdesk"
    assert one(service, "WorkingDirectory") == "/var/lib/helpdesk"
    assert one(service, "StateDirectory") == "helpdesk"
    assert "HELPDESK_CONFIG=/etc/helpdesk/helpdesk.toml" in words(service["Environment"])

    assert one(service, "Restart") in ("on-failure", "always", "on-abnormal")
    assert seconds(one(service, "RestartSec")) > 0

    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ProtectSystem") == "strict"
    # strict makes / read-only: the state directory must stay writable
    assert "/var/lib/helpdesk" in words(service.get("ReadWritePaths", []))
    assert one(service, "ProtectHome") in ("yes", "read-only", "tmpfs")
    assert one(service, "PrivateTmp") == "yes"
    assert service.get("KillMode", ["control-group"]) == ["control-group"]
    stop = seconds(one(service, "TimeoutStopSec"))
    assert 10 <= stop <= 90, "modem threads need time to stop, but not forever"

    after = words(unit["Unit"].get("After", []))
    assert "network-online.target" in after and "mariadb.service" in after
    assert "network-online.target" in words(unit["Unit"].get("Wants", []))
    # a remote MariaDB or SQLite must work: order after it, never require it
    assert "mariadb.service" not in words(unit["Unit"].get("Requires", []))
    assert "mariadb.service" not in words(unit["Unit"].get("BindsTo", []))
    assert "multi-user.target" in words(unit["Install"]["WantedBy"])
    return service


def test_daemon_unit(tmp_path):
    unit = load_unit("helpdesk.service")
    service = check_common_service(unit, "run")

    # the modems are root:dialout 0660
    groups = words(service.get("SupplementaryGroups", [])) + words(service.get("Group", []))
    assert "dialout" in groups

    # /dev/ttyUSB0 must stay reachable
    assert service.get("PrivateDevices", ["no"]) != ["yes"], "PrivateDevices hides /dev/ttyUSB*"
    assert service.get("PrivateUsers", ["no"]) != ["yes"], "PrivateUsers unmaps dialout"
    policy = service.get("DevicePolicy", ["auto"])[-1]
    if policy in ("closed", "strict"):
        allowed = {}
        for rule in service.get("DeviceAllow", []):
            spec, _, access = rule.partition(" ")
            allowed[spec] = access.strip() or "rwm"
        for group in ("char-ttyUSB", "char-ttyACM"):
            assert group in allowed and {"r", "w"} <= set(allowed[group]), allowed
        # DeviceAllow= groups are resolved when the unit starts: the drivers
        # must be loaded before, or the rule is silently dropped
        wants = words(unit["Unit"].get("Wants", []))
        after = words(unit["Unit"].get("After", []))
        for module in ("modprobe@usbserial.service", "modprobe@cdc_acm.service"):
            assert module in wants and module in after

    if shutil.which("systemd-analyze"):
        systemd_analyze_verify(SYSTEMD / "helpdesk.service", tmp_path)


def test_web_only_unit(tmp_path):
    unit = load_unit("helpdesk-web.service")
    service = check_common_service(unit, "web")
    # the UI alone touches no modem
    assert "dialout" not in words(service.get("SupplementaryGroups", []))
    assert not service.get("DeviceAllow")

    if shutil.which("systemd-analyze"):
        systemd_analyze_verify(SYSTEMD / "helpdesk-web.service", tmp_path)


def test_web_template_unit_takes_its_port_from_the_instance(tmp_path):
    """helpdesk-web@8081.service listens on 127.0.0.1:8081, the rest from the one config."""
    unit = load_unit("helpdesk-web@.service")
    service = check_common_service(unit, "web")
    assert "dialout" not in words(service.get("SupplementaryGroups", []))
    assert not service.get("DeviceAllow")
    # the sandbox is the single web unit's, line for line
    single = load_unit("helpdesk-web.service")["Service"]
    assert {k: v for k, v in service.items() if k != "Environment"} == {
        k: v for k, v in single.items() if k != "Environment"}
    assert set(single["Environment"]) < set(service["Environment"])

    environment = dict(word.split("=", 1) for word in words(service["Environment"]))
    config = tmp_path / "helpdesk.toml"
    config.write_text('[web]\nlisten = "127.0.0.1:8080"\n')
    for port in ("8081", "8082"):
        env = {key: value.replace("%i", port) for key, value in environment.items()}
        assert load_config(str(config), environ=env).web_listen == f"127.0.0.1:{port}"
    # a mistyped instance fails with the variable's name, not a traceback
    bad = {key: value.replace("%i", "web1") for key, value in environment.items()}
    with pytest.raises(ConfigError, match="HELPDESK_WEB_LISTEN"):
        load_config(str(config), environ=bad)

    if shutil.which("systemd-analyze"):
        # an instance, as systemctl would load it (a bare template is not verifiable)
        instance = tmp_path / "helpdesk-web@8081.service"
        instance.write_text((SYSTEMD / "helpdesk-web@.service").read_text())
        systemd_analyze_verify(instance, tmp_path / "verify")


def test_web_template_instances_serve_on_their_ports(tmp_path):
    """Two instances with the template's environment: each `helpdesk web` answers
    on the port of its instance name, none on the file's [web] listen."""
    service = load_unit("helpdesk-web@.service")["Service"]
    file_port = helpers.free_port()
    config = tmp_path / "helpdesk.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/helpdesk.db"\n\n'
                      f'[web]\nlisten = "127.0.0.1:{file_port}"\n')
    init = subprocess.run([helpers.HELPDESK, "--config", str(config), "init"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    processes = {}
    try:
        for _ in range(2):
            port = str(helpers.free_port())
            env = dict(os.environ, HELPDESK_LOG_LEVEL="WARNING")
            env.update(word.replace("%i", port).split("=", 1)
                       for word in words(service["Environment"]))
            argv = exec_argv(one(service, "ExecStart"))
            argv[0] = helpers.HELPDESK
            argv[argv.index("--config") + 1] = str(config)
            with open(tmp_path / f"web-{port}.log", "w") as log:
                processes[int(port)] = subprocess.Popen(argv, cwd=tmp_path, env=env,
                                                        stdout=log, stderr=subprocess.STDOUT)
        for port, process in processes.items():
            # a busy machine takes its time to start Python and Twisted
            answer = helpers.wait_for(
                lambda p=port, proc=process: "exited" if proc.poll() is not None else
                helpers.api(p, "/api/v1/health"), timeout=60, what=f"helpdesk web on port {port}")
            assert answer != "exited", (tmp_path / f"web-{port}.log").read_text()
            status, body = answer
            assert status in (200, 503) and "status" in body
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", file_port), timeout=2).close()
    finally:
        for process in processes.values():
            helpers.stop(process)


def test_unit_parser_handles_systemd_rules():
    unit = parse_unit(
        "[Service]\n"
        "# comment\n"
        "DeviceAllow=char-ttyUSB rw\n"
        "DeviceAllow=char-ttyACM rw\n"
        "ExecStart=/bin/false\n"
        "ExecStart=\n"
        "ExecStart=/usr/bin/helpdesk \\\n"
        "    --config /x.toml run\n"
    )
    assert unit["Service"]["DeviceAllow"] == ["char-ttyUSB rw", "char-ttyACM rw"]
    assert exec_argv(one(unit["Service"], "ExecStart")) == [
        "/usr/bin/helpdesk", "--config", "/x.toml", "run"]
    assert seconds("1min 30s") == 90


def test_systemd_readme_covers_installation():
    text = (SYSTEMD / "README.md").read_text()
    for needle in ("useradd --system", "venv", "helpdesk init", "systemctl enable",
                   "helpdesk-web.service"):
        assert needle in text, needle


# --------------------------------------------------------------------------
# Asterisk dialplan
# --------------------------------------------------------------------------

APP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\((.*)\)$", re.S)
PRIORITY_RE = re.compile(r"^(\d+|n)(?:\(([A-Za-z0-9_-]+)\))?$")
CONTEXT_RE = re.compile(r"^\[([A-Za-z0-9_.+-]+)\](?:\([^)]*\))?$")
ENTRY_RE = re.compile(r"^(exten|same)\s*=>\s*(.*)$")


def strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            out.append(line[i:i + 2])
            i += 2
            continue
        if line[i] == ";":
            break
        out.append(line[i])
        i += 1
    return "".join(out).strip()


def balanced(text: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack and not quoted


def split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside (), [], {} and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


class Step:
    def __init__(self, lineno, priority, label, app, args):
        self.lineno, self.priority, self.label = lineno, priority, label
        self.app, self.args = app, args


def parse_dialplan(text: str) -> dict[str, dict[str, list[Step]]]:
    """Contexts -> extensions -> steps, asserting every line is well formed."""
    contexts: dict[str, dict[str, list[Step]]] = {}
    current = None
    last_exten = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = strip_comment(raw)
        if not line or line.startswith("#include") or line.startswith("#exec"):
            continue
        header = CONTEXT_RE.match(line)
        if header:
            current = contexts.setdefault(header.group(1), {})
            last_exten = None
            continue
        assert current is not None, f"line {lineno}: outside any context: {raw!r}"
        entry = ENTRY_RE.match(line)
        if not entry:
            assert re.match(r"^(include|switch|ignorepat)\s*=>\s*\S", line), (
                f"line {lineno}: not a dialplan line: {raw!r}")
            continue
        kind, rest = entry.groups()
        if kind == "exten":
            exten, _, rest = rest.partition(",")
            exten = exten.strip()
            assert re.fullmatch(r"_?[A-Za-z0-9+*#.!\[\]\-]+", exten), (
                f"line {lineno}: bad extension {exten!r}")
            last_exten = exten
        else:
            assert last_exten is not None, f"line {lineno}: 'same =>' with no extension before"
        priority_text, _, app_text = rest.partition(",")
        prio = PRIORITY_RE.match(priority_text.strip())
        assert prio, f"line {lineno}: bad priority {priority_text!r}"
        app = APP_RE.match(app_text.strip())
        assert app, f"line {lineno}: not App(args): {app_text!r}"
        assert balanced(app.group(2)), f"line {lineno}: unbalanced brackets: {raw!r}"
        steps = current.setdefault(last_exten, [])
        number = prio.group(1)
        if not steps:
            assert number == "1", f"line {lineno}: {last_exten} must start at priority 1"
            value = 1
        elif number == "n":
            value = steps[-1].priority + 1
        else:
            value = int(number)
            assert value > steps[-1].priority, f"line {lineno}: priorities must increase"
        if prio.group(2):
            assert prio.group(2) not in {s.label for s in steps}, f"line {lineno}: duplicate label"
        steps.append(Step(lineno, value, prio.group(2), app.group(1), app.group(2)))
    return contexts


def jump_targets(step: Step) -> list[list[str]]:
    """The [context,] [exten,] priority lists a step may jump to."""
    app = step.app.lower()
    if app in ("goto", "gosub"):
        return [split_top(step.args, ",")]
    if app in ("gotoif", "gosubif"):
        parts = split_top(step.args, "?")
        assert len(parts) == 2, f"line {step.lineno}: {step.app} without '?'"
        return [split_top(dest, ",") for dest in split_top(parts[1], ":") if dest.strip()]
    if app == "set":
        name, _, value = step.args.partition("=")
        if name.replace(" ", "").lower() in ("channel(hangup_handler_push)",
                                             "channel(hangup_handler_wipe)"):
            return [split_top(value, ",")]
    return []


def check_jumps(contexts) -> None:
    for ctx_name, extens in contexts.items():
        for exten, steps in extens.items():
            for step in steps:
                for target in jump_targets(step):
                    target = [part.strip() for part in target]
                    assert 1 <= len(target) <= 3, f"line {step.lineno}: bad target {target}"
                    context, ext, prio = ([ctx_name, exten] + target)[-3:]
                    if "${" in context:
                        continue
                    assert context in contexts, (
                        f"line {step.lineno}: jump to missing context {context!r}")
                    if "${" in ext:
                        continue
                    assert ext in contexts[context], (
                        f"line {step.lineno}: jump to missing extension {context},{ext}")
                    prio = re.sub(r"\(.*\)$", "", prio)  # Gosub(ctx,s,1(args))
                    if "${" in prio:
                        continue
                    known = {str(s.priority) for s in contexts[context][ext]}
                    known |= {s.label for s in contexts[context][ext] if s.label}
                    assert prio in known, (
                        f"line {step.lineno}: jump to missing priority {context},{ext},{prio}")


def agi_urls(contexts) -> list[tuple[int, str]]:
    urls = []
    for extens in contexts.values():
        for steps in extens.values():
            for step in steps:
                if step.app.lower() in ("agi", "eagi"):
                    urls.append((step.lineno, split_top(step.args, ",")[0].strip()))
    return urls


def check_agi(contexts) -> None:
    urls = agi_urls(contexts)
    assert urls
    for lineno, url in urls:
        parts = urlsplit(url)
        assert parts.scheme == "agi", f"line {lineno}: not a FastAGI URL: {url}"
        assert (parts.hostname, parts.port) == ("127.0.0.1", 4573), (
            f"line {lineno}: FastAGI must go to 127.0.0.1:4573, got {url}")
        assert parse_qs(parts.query) == {"secret": ["${HELPDESK_AGI_SECRET}"]}, (
            f"line {lineno}: FastAGI URLs must carry ?secret=${{HELPDESK_AGI_SECRET}}: {url}")


def agi_script(step: Step) -> str:
    return urlsplit(split_top(step.args, ",")[0].strip()).path


@pytest.fixture(scope="module")
def dialplan():
    return parse_dialplan((DIALPLANS / "extensions.conf").read_text())


def test_dialplan_is_well_formed_and_jumps_resolve(dialplan):
    assert {"helpdesk-incoming", "helpdesk-hangup"} <= set(dialplan)
    check_jumps(dialplan)


def test_dialplan_fastagi_is_local(dialplan):
    check_agi(dialplan)
    scripts = {urlsplit(url).path for _, url in agi_urls(dialplan)}
    assert {"/incoming", "/hangup"} <= scripts


def test_incoming_call_flow(dialplan):
    steps = dialplan["helpdesk-incoming"]["s"]
    apps = [s.app for s in steps]

    # answer-less: the queue answers when an operator picks up
    assert "Answer" not in apps
    push = [i for i, s in enumerate(steps) if s.app == "Set" and "hangup_handler_push" in s.args]
    lookup = [i for i, s in enumerate(steps) if s.app == "AGI" and agi_script(s) == "/incoming"]
    queue = [i for i, s in enumerate(steps) if s.app == "Queue"]
    assert push and lookup and queue
    # every call gets its hangup report, even one that ends during the lookup
    assert push[0] < lookup[0] < queue[0]
    assert split_top(steps[queue[0]].args, ",")[0] == "helpdesk"
    assert steps[push[0]].args.split("=", 1)[1].split(",")[0] == "helpdesk-hangup"

    # DID-style extensions all end up in s
    for exten, ext_steps in dialplan["helpdesk-incoming"].items():
        if exten != "s":
            assert any(s.app == "Goto" and s.args.endswith(",s,1") for s in ext_steps)


def test_hangup_handler_is_a_subroutine(dialplan):
    for steps in dialplan["helpdesk-hangup"].values():
        assert steps[0].app == "AGI" and agi_script(steps[0]) == "/hangup"
        assert steps[-1].app == "Return", "hangup handlers must end with Return()"


@pytest.mark.parametrize("bad, message", [
    ("[a]\nexten => s,2,NoOp()\n", "priority 1"),
    ("[a]\nexten => s,1,NoOp(\n", "not App"),
    ("[a]\nsame => n,NoOp()\n", "no extension"),
    ("[a]\nexten => s,1,Goto(b,s,1)\n", "missing context"),
    ("[a]\nexten => s,1,GotoIf($[1]?nowhere)\n", "missing priority"),
    ("[a]\nexten => s,1,Set(CHANNEL(hangup_handler_push)=h,s,1)\n", "missing context"),
    ("[a]\nexten => s,1,AGI(agi://10.0.0.1:4573/x)\n", "127.0.0.1:4573"),
    ("[a]\nexten => s,1,AGI(agi://127.0.0.1:4573/x)\n", "?secret="),
    ("[a]\nexten => s,1,AGI(agi://127.0.0.1:4573/x?secret=abc)\n", "?secret="),
    ("[a]\nexten => s,1,AGI(helpdesk.py)\n", "not a FastAGI"),
])
def test_dialplan_checks_catch_mistakes(bad, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        contexts = parse_dialplan(bad)
        check_jumps(contexts)
        check_agi(contexts)


def test_agi_secret_path_agrees_with_config_unit_and_install_docs():
    """The file `helpdesk init` writes (the default [agi] secret_file, in the unit's
    working directory) is the one the dialplan reads, and the install steps let
    Asterisk read it by group and pass through the directories on the way."""
    text = (DIALPLANS / "extensions.conf").read_text()
    (path,) = re.findall(r"\$\{FILE\(([^,)]+)\)\}", strip_comments(text))
    service = load_unit("helpdesk.service")["Service"]
    workdir = Path(one(service, "WorkingDirectory"))
    default = Path(Config().agi_secret_file)
    assert not default.is_absolute()  # relative to the working directory, like web's
    assert Path(path) == workdir / default
    state = Path("/var/lib") / one(service, "StateDirectory")
    assert Path(path).is_relative_to(state)  # the daemon may write there (ProtectSystem)

    readme = (DIALPLANS / "README.md").read_text()
    assert f"chgrp asterisk {path}\n" in readme
    dirs = [str(d) for d in reversed(Path(path).parents) if d.is_relative_to(state)]
    assert f"setfacl -m u:asterisk:x {' '.join(dirs)}\n" in readme
    assert "usermod -aG helpdesk asterisk" not in readme  # the config's group: too much
    assert path in (SYSTEMD / "README.md").read_text()
    for name in ("helpdesk.service", "helpdesk-web.service"):
        # the unit creates the state directory closed to others: only the ACL opens it
        assert one(load_unit(name)["Service"], "StateDirectoryMode") == "0750"


def strip_comments(text: str) -> str:
    return "\n".join(strip_comment(line) for line in text.splitlines())


def test_queue_config_defines_the_queue():
    text = (DIALPLANS / "queues.conf").read_text()
    assert re.search(r"(?m)^\[helpdesk\]\s*$", text)
    readme = (DIALPLANS / "README.md").read_text()
    assert "#include" in readme and "later issue" in readme


# --------------------------------------------------------------------------
# LTSP kiosk
# --------------------------------------------------------------------------

KIOSK = LTSP / "helpdesk-kiosk.sh"

# Parameters from man ltsp.conf (LTSP 20+).  x = any suffix.
LTSP_PARAMETERS = {
    "ADD_IMAGE_EXCLUDES", "OMIT_IMAGE_EXCLUDES", "AUTOLOGIN", "RELOGIN",
    "GDM3_CONF", "LIGHTDM_CONF", "SDDM_CONF", "CUPS_SERVER", "DEBUG_LOG",
    "DEBUG_SHELL", "DEFAULT_IMAGE", "KERNEL_PARAMETERS", "MENU_TIMEOUT",
    "DISABLE_SESSION_SERVICES", "DISABLE_SYSTEM_SERVICES",
    "KEEP_SESSION_SERVICES", "KEEP_SYSTEM_SERVICES", "MASK_SESSION_SERVICES",
    "MASK_SYSTEM_SERVICES", "DNS_SERVER", "HOSTNAME", "IMAGE_TO_RAM",
    "INCLUDE", "LOCAL_SWAP", "MULTISEAT", "NAT", "OMIT_FUNCTIONS",
    "PWMERGE_SUR", "PWMERGE_SGR", "PWMERGE_DGR", "PWMERGE_DUR", "REMOTEAPPS",
    "RPI_IMAGE", "SEARCH_DOMAIN", "SERVER", "X_DRIVER", "X_HORIZSYNC",
    "X_MODELINE", "X_MODES", "X_PREFERREDMODE", "X_VERTREFRESH", "X_VIRTUAL",
}
LTSP_PREFIXES = ("CRONTAB_", "FSTAB_", "HOSTS_", "PASSWORDS_", "UDEV_SEAT_",
                 "PRE_INIT_", "POST_INIT_", "PRE_INITRD_BOTTOM_",
                 "POST_INITRD_BOTTOM_", "PRE_LOGIN_", "POST_LOGIN_",
                 "PRE_SESSION_", "POST_SESSION_")


def ltsp_ini2sh(text: str) -> tuple[str, set[str]]:
    """What `ltsp` does to ltsp.conf: [section] headers become functions."""
    out = ["section_unnamed() {", ":"]
    names = set()
    for line in text.splitlines():
        if re.match(r"^[ ]*\[[^]]*\]", line):
            name = "section_" + re.sub(r"[^a-z0-9]", "_", line.strip()[1:-1].lower())
            names.add(name)
            out += ["}", f"{name}() {{", ":"]
        elif re.match(r"(?i)^include *=", line):
            out.append("section_" + re.sub(r"(?i)^include *= *", "", line).lower())
        elif re.match(r"^[a-zA-Z0-9_]* *=", line):
            out.append(re.sub(r" *= *", "=", line, count=1))
        else:
            out.append(line)
    out.append("}")
    return "\n".join(out) + "\n", names


def ltsp_assignments(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip().strip("\"'")
    return found


def test_kiosk_script_is_executable_bash():
    mode = KIOSK.stat().st_mode
    assert mode & stat.S_IXUSR and mode & stat.S_IXGRP and mode & stat.S_IXOTH
    assert KIOSK.read_text().startswith("#!/bin/bash\n")
    subprocess.run(["bash", "-n", str(KIOSK)], check=True, timeout=30)


def test_ltsp_conf_syntax_and_keys():
    text = (LTSP / "ltsp.conf").read_text()
    # `ltsp initrd` refuses a file that fails `sh -n`
    subprocess.run(["sh", "-n", str(LTSP / "ltsp.conf")], check=True, timeout=30)
    script, sections = ltsp_ini2sh(text)
    subprocess.run(["sh", "-n"], input=script, text=True, check=True, timeout=30)
    assert "section_clients" in sections

    params = ltsp_assignments(text)
    for name in params:
        assert (name in LTSP_PARAMETERS or name.startswith(LTSP_PREFIXES)
                or name.startswith("HELPDESK_")), f"{name} is not an ltsp.conf parameter"

    # every section called from a PRE_/POST_ hook exists
    called_sections = set()
    for name, value in params.items():
        for called in re.findall(r"\bsection_[a-z0-9_]+", value):
            assert called in sections, f"{name} calls missing {called}"
            called_sections.add(called)
    # ... and every named section is called: a line starting with "[" (say,
    # "[Desktop Entry]" written into a .desktop file) would silently start a
    # new section and cut the one it is in short.  Names that could be a
    # MAC, IP or hostname glob are matched by LTSP itself.
    for header in re.findall(r"(?m)^[ ]*\[([^]]*)\]", text):
        name = "section_" + re.sub(r"[^a-z0-9]", "_", header.lower())
        if header.lower() in ("server", "common", "clients"):
            continue
        if re.fullmatch(r"[A-Za-z0-9.*?:\-]+", header):
            continue
        assert name in called_sections, f"section [{header}] is never called"

    # the pieces fit together: the autologin user is the one created, its
    # session is the one written, and the script installed is this one
    user = params["AUTOLOGIN"]
    assert re.search(rf"useradd\b[^\n]*\s{re.escape(user)}\s*$", text, re.M)
    session = re.search(r"autologin-session=([\w-]+)", params["LIGHTDM_CONF"]).group(1)
    assert f"/usr/share/xsessions/{session}.desktop" in text
    # installed without ".sh": `ltsp initrd` runs `sh -n` (dash) on every *.sh
    # in /etc/ltsp and refuses to build ltsp.img on the bash script
    assert "install -m 0755 /etc/ltsp/helpdesk-kiosk /usr/local/bin/helpdesk-kiosk" in text
    assert not re.search(r"/etc/ltsp/\S+\.sh\b", text)
    readme = (LTSP / "README.md").read_text()
    assert f"ltsp/{KIOSK.name} /etc/ltsp/helpdesk-kiosk\n" in readme


class Listener:
    """A TCP server that accepts and drops connections, on a fixed port."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def alive(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_kiosk_waits_for_server_and_reloads_after_outage(tmp_path):
    calls = tmp_path / "browser-calls"
    browser = tmp_path / "fake-chromium"
    browser.write_text(f'#!/bin/bash\necho "$$ $*" >> "{calls}"\nexec sleep 300\n')
    browser.chmod(0o755)
    phone_calls = tmp_path / "phone-calls"
    phone = tmp_path / "fake-phone"
    phone.write_text(f'#!/bin/bash\necho "$$ $*" >> "{phone_calls}"\nexec sleep 300\n')
    phone.chmod(0o755)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"

    def lines():
        return calls.read_text().splitlines() if calls.exists() else []

    env = dict(os.environ,
               HELPDESK_KIOSK_CONF=str(tmp_path / "absent.conf"),
               HELPDESK_KIOSK_BROWSER=str(browser),
               HELPDESK_KIOSK_CHECK_INTERVAL="0.2",
               HELPDESK_KIOSK_RESTART_DELAY="0.1",
               HELPDESK_KIOSK_PHONE=str(phone),
               TMPDIR=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(["bash", str(KIOSK), url], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    listener = None
    try:
        time.sleep(1.0)
        assert not lines(), "browser started while the server was down"

        listener = Listener(port)
        assert wait_for(lambda: len(lines()) == 1), "browser not started once the server is up"
        pid, *args = lines()[0].split()
        for flag in ("--kiosk", "--incognito", "--no-first-run",
                     "--disable-background-networking"):
            assert flag in args
        assert args[-1] == url

        listener.close()   # outage ...
        listener = None
        time.sleep(1.0)
        assert len(lines()) == 1, "browser must wait on its error page during the outage"
        listener = Listener(port)   # ... and back
        assert wait_for(lambda: len(lines()) == 2), "browser not restarted after the outage"
        assert wait_for(lambda: not alive(pid), 5), "old browser still running"

        # the softphone runs once for the whole session, outage or not
        assert wait_for(lambda: phone_calls.exists())
        (phone_line,) = phone_calls.read_text().splitlines()
        phone_pid, phone_args = phone_line.split(" ", 1)
        assert phone_args == "run" and alive(phone_pid)

        last_pid = lines()[1].split()[0]
        proc.terminate()
        proc.wait(timeout=10)
        assert wait_for(lambda: not alive(phone_pid), 5), "softphone left running"
        assert wait_for(lambda: not alive(last_pid), 5), (
            "browser left running after the kiosk script was stopped")
        assert not list(tmp_path.glob("helpdesk-kiosk.*")), "temporary profile left behind"
    finally:
        if listener:
            listener.close()
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=10)
