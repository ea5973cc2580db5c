"""The install layout README.md states is the one the systemd files make.

README.md lists the account and the paths in two tables ("Install layout"); an
admin follows them, and the units, sysusers.d and tmpfiles.d files create and
use them.  These tests read the tables and hold every file to them, and let
systemd-sysusers and systemd-tmpfiles build the layout in a scratch root so
that what they make (user, home, groups, owners, modes) is checked, not only
what the files say.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gateway.config import Config
from tests.deploy.test_deployment_files import exec_argv, load_unit, one, words

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
SYSUSERS = SYSTEMD / "sysusers.d" / "helpdesk.conf"
TMPFILES = SYSTEMD / "tmpfiles.d" / "helpdesk.conf"
UNITS = ("helpdesk.service", "helpdesk-web.service", "helpdesk-web@.service")


def readme_tables() -> list[list[dict[str, str]]]:
    """The tables of README.md's "Install layout" section, as rows of dicts."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"(?ms)^## Install layout\n(.*?)(?=^## )", text)
    assert match, 'README.md has no "## Install layout" section'
    tables, lines = [], []
    for line in match.group(1).splitlines() + [""]:
        if line.startswith("|"):
            lines.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif lines:
            header, rule, *rows = lines
            assert all(set(c) <= set("-: ") for c in rule), rule
            tables.append([dict(zip(header, row, strict=True)) for row in rows])
            lines = []
    return tables


def code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def layout():
    accounts, paths = readme_tables()
    (account,) = accounts
    user = code(account["account"])[0]
    groups_cell = account["groups"]
    primary = code(groups_cell.split(";")[0])
    assert len(primary) == 1
    extra = code(groups_cell.split(";", 1)[1]) if ";" in groups_cell else []
    by_path = {}
    for row in paths:
        (path,) = code(row["path"])
        owner, group = row["owner:group"].split(":")
        by_path[path] = (owner, group, int(row["mode"], 8), row["what"])
    return {"user": user, "group": primary[0], "home": code(account["home"])[0],
            "gateway_groups": extra, "kind": account["kind"], "paths": by_path}


@pytest.fixture(scope="module")
def expected():
    return layout()


def paths_named(expected, what: str) -> str:
    (path,) = [p for p, (*_, text) in expected["paths"].items() if what in text]
    return path


def tmpfiles_entries() -> dict[str, tuple[str, int, str, str]]:
    entries = {}
    for line in TMPFILES.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        kind, path, mode, owner, group, age = line.split()
        assert path not in entries, f"{path} twice in {TMPFILES.name}"
        entries[path] = (kind, int(mode, 8), owner, group)
        assert age == "-", f"{path}: the helpdesk's files must never be aged away"
    return entries


def test_readme_layout_is_complete(expected):
    assert expected["user"] == expected["group"] == "helpdesk"
    assert "system user" in expected["kind"] and "no login" in expected["kind"]
    assert expected["gateway_groups"] == ["dialout"]
    for name in ("the program", "configuration directory", "configuration (", "state",
                 "session.key", "Gammu"):
        paths_named(expected, name)


def test_units_run_as_the_readme_user_from_the_readme_paths(expected):
    program = paths_named(expected, "the program")
    config = paths_named(expected, "configuration (")
    state = paths_named(expected, "state;")
    logs = paths_named(expected, "Gammu")
    for name in UNITS:
        unit = load_unit(name)
        service = unit["Service"]
        assert one(service, "User") == expected["user"], name
        assert one(service, "Group") == expected["group"], name
        argv = exec_argv(one(service, "ExecStart"))
        assert argv[0] == program, name
        assert argv[argv.index("--config") + 1] == config, name
        assert f"HELPDESK_CONFIG={config}" in words(service["Environment"]), name
        assert one(service, "WorkingDirectory") == state == expected["home"], name
        assert Path("/var/lib", one(service, "StateDirectory")) == Path(state), name
        writable = set(words(service.get("ReadWritePaths", [])))
        assert writable <= set(expected["paths"]), f"{name}: {writable} not in README"
        made = {Path("/var/lib", d) for d in words(service.get("StateDirectory", []))}
        made |= {Path("/var/log", d) for d in words(service.get("LogsDirectory", []))}
        # a ReadWritePaths= directory that does not exist fails the unit: each
        # must be one the unit creates itself
        assert {Path(p) for p in writable} <= made, name
        supplementary = words(service.get("SupplementaryGroups", []))
        if name == "helpdesk.service":
            assert supplementary == expected["gateway_groups"]
            assert Path("/var/log", one(service, "LogsDirectory")) == Path(logs)
        else:
            assert supplementary == [], f"{name}: the UI needs no modem"
    # the gateway role under its role's name too
    assert "helpdesk-gateway.service" in words(load_unit("helpdesk.service")["Install"]["Alias"])


def test_secrets_land_in_the_readme_directory(expected):
    secrets = Path(paths_named(expected, "session.key"))
    state = Path(paths_named(expected, "state;"))
    defaults = Config()
    database = defaults.database_url.removeprefix("sqlite:///")
    assert not database.startswith("/")
    for relative in (defaults.secret_file, defaults.agi_secret_file, database):
        assert (state / relative).parent == secrets


def test_tmpfiles_match_readme(expected):
    entries = tmpfiles_entries()
    directories = {p: v for p, v in expected["paths"].items()
                   if not Path(p).suffix and "program" not in v[3]}
    assert set(entries) == set(directories)
    for path, (owner, group, mode, _) in directories.items():
        assert entries[path] == ("d", mode, owner, group), path


def test_sysusers_match_readme(expected):
    lines = [line.split(None, 2) for line in SYSUSERS.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    users = [rest for kind, name, rest in lines if kind == "u"]
    assert [name for kind, name, _ in lines if kind == "u"] == [expected["user"]]
    assert expected["home"] in users[0] and "/usr/sbin/nologin" in users[0]
    members = {(name, rest) for kind, name, rest in lines if kind == "m"}
    assert members == {(expected["user"], g) for g in expected["gateway_groups"]}


@pytest.fixture
def scratch_root(tmp_path):
    """A root with this machine's account databases, for --root runs."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "group", "shadow", "gshadow"):
        source = Path("/etc", name)
        if os.access(source, os.R_OK):
            shutil.copy(source, etc / name)
        else:
            (etc / name).touch()
    return tmp_path


def sysusers(root: Path) -> None:
    proc = subprocess.run(["systemd-sysusers", f"--root={root}", str(SYSUSERS)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_systemd_builds_the_readme_layout(expected, scratch_root):
    """systemd-sysusers and systemd-tmpfiles make what README.md lists."""
    sysusers(scratch_root)
    passwd = {line.split(":")[0]: line.split(":")
              for line in (scratch_root / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line.split(":")
              for line in (scratch_root / "etc/group").read_text().splitlines()}
    user = passwd[expected["user"]]
    assert user[5] == expected["home"] and user[6] == "/usr/sbin/nologin"
    assert int(user[2]) < 1000, "a system user"
    assert user[3] == groups[expected["group"]][2], "its own group is its primary group"
    for group in expected["gateway_groups"]:
        assert expected["user"] in groups[group][3].split(","), group

    if os.geteuid() == 0:
        tmpfiles = TMPFILES
    else:
        # chown to helpdesk needs root: make the modes, with ourselves as owner
        # (the owners are held to the README by test_tmpfiles_match_readme)
        me = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        tmpfiles = scratch_root / "helpdesk.conf"
        tmpfiles.write_text(re.sub(r"(?m)^(d \S+ +\S+) +\S+ +\S+", rf"\1 {me} {me}",
                                   TMPFILES.read_text()))
    proc = subprocess.run(["systemd-tmpfiles", "--create", f"--root={scratch_root}",
                           str(tmpfiles)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ids = {"root": 0, expected["user"]: int(user[2])}
    gids = {"root": 0, expected["group"]: int(user[3])}
    for path, (owner, group, mode, what) in expected["paths"].items():
        if Path(path).suffix or "program" in what:
            continue  # files: made by the install steps, not by tmpfiles
        made = (scratch_root / path.lstrip("/")).stat()
        assert stat.S_ISDIR(made.st_mode), path
        assert stat.S_IMODE(made.st_mode) == mode, f"{path}: {oct(made.st_mode)}"
        if os.geteuid() == 0:
            assert (made.st_uid, made.st_gid) == (ids[owner], gids[group]), path
