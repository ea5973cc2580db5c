"""`helpdesk user list|passwd|disable|enable` and `token list|revoke`."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from gateway import cli
from gateway.db.models import AuditLog
from gateway.desk import users


@pytest.fixture
def run(db_url, engine, tmp_path, capsys, monkeypatch):
    path = tmp_path / "h.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n')

    def call(*argv, stdin=None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(["--config", str(path), *argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def test_user_commands(run, sessionmaker):
    assert run("user", "add", "boss", "--role", "admin")[0] == 0
    assert run("user", "add", "ani", "--role", "operator")[0] == 0
    code, out, _ = run("user", "list")
    assert code == 0 and "ani\toperator\tactive" in out and "boss\tadmin" in out
    code, out, _ = run("user", "passwd", "ani")
    assert code == 0 and "new password: " in out
    new = out.rsplit(": ", 1)[1].strip()
    with sessionmaker() as s:
        assert users.authenticate(s, "ani", new, users.utcnow()) is not None
    code, out, _ = run("user", "passwd", "ani", "--password-stdin", stdin="lagi-rahasia\n")
    assert code == 0 and "lagi-rahasia" not in out
    code, _, err = run("user", "passwd", "ani", "--password-stdin", stdin="short\n")
    assert code == 2 and "too short" in err and err.count("\n") == 1
    assert run("user", "disable", "ani") == (0, "helpdesk: user 'ani' disabled\n", "")
    assert "ani\toperator\tdisabled" in run("user", "list")[1]
    assert run("user", "enable", "ani")[0] == 0
    code, _, err = run("user", "disable", "boss")
    assert code == 2 and "last active admin" in err
    code, _, err = run("user", "disable", "nobody")
    assert code == 2 and "no user 'nobody'" in err
    with sessionmaker() as s:
        rows = list(s.scalars(select(AuditLog).order_by(AuditLog.id)))
    assert [r.action for r in rows] == ["user.password_reset", "user.password_reset",
                                        "user.disable", "user.enable"]
    assert all(r.user_id is None and json.loads(r.detail)["via"] == "cli" for r in rows)


def test_token_commands(run):
    run("user", "add", "ani", "--role", "operator")
    run("token", "create", "shop", "--user", "ani")
    run("token", "create", "shop")
    code, out, _ = run("token", "list")
    assert code == 0 and out.count("\tshop\t") == 2 and "ani" in out and "live" in out
    assert run("token", "revoke", "shop") == (0, "helpdesk: revoked 2 token(s) named 'shop'\n", "")
    assert "revoked" in run("token", "list")[1]
    code, _, err = run("token", "revoke", "nope")
    assert code == 2 and "no API token named 'nope'" in err
