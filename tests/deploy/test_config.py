"""The configuration file: defaults, validation, one clear line and exit code 2."""
from __future__ import annotations

import pytest

from gateway.cli import main
from gateway.config import ConfigError, load


def write(tmp_path, text):
    path = tmp_path / "helpdesk.toml"
    path.write_text(text)
    return str(path)


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load(None, environ={})
    assert config.database_url == "sqlite:///var/helpdesk.db"
    assert config.web_listen == "127.0.0.1:8080" and config.agi_listen == "127.0.0.1:4573"
    assert config.agi_secret_file == "var/agi.secret"  # next to web.secret_file's
    assert config.country == "ID" and config.modems == ()


def test_modem_keys_pass_to_gammu(tmp_path):
    config = load(write(tmp_path, """
[[modem]]
name = "modem1"
device = "/dev/ttyUSB0"
connection = "at115200"
"""), environ={})
    assert config.modems[0].gammu == {"Device": "/dev/ttyUSB0", "Connection": "at115200"}


def test_gateway_keys_of_a_modem_are_not_passed_to_gammu(tmp_path):
    config = load(write(tmp_path, """
[[modem]]
name = "telkomsel"
device = "/dev/ttyUSB0"
prefixes = ["0811", "0812", "+62852"]
send_rate = 6
"""), environ={})
    modem = config.modems[0]
    assert modem.gammu == {"Device": "/dev/ttyUSB0", "Connection": "at"}
    assert modem.send_rate == 6.0
    assert modem.routes("+628121234567") and modem.routes("+628521234567")
    assert not modem.routes("+628561234567")


def test_agi_secret_file(tmp_path):
    config = load(write(tmp_path, '[agi]\nsecret_file = "/var/lib/helpdesk/agi.secret"\n'),
                  environ={})
    assert config.agi_secret_file == "/var/lib/helpdesk/agi.secret"


def test_environment_overrides_database_url(tmp_path):
    config = load(write(tmp_path, ""), environ={
        "HELPDESK_DATABASE_URL": "mysql+pymysql://u:p@db/helpdesk"})
    assert config.database_url == "mysql+pymysql://u:p@db/helpdesk"


def test_a_postgresql_url_is_accepted(tmp_path):
    config = load(write(tmp_path, '[database]\nurl = "postgresql+psycopg://u@db/helpdesk"\n'),
                  environ={})
    assert config.database_url == "postgresql+psycopg://u@db/helpdesk"


@pytest.mark.parametrize("text, key, problem", [
    ("[web]\nlisten = 8080\n", "web.listen", "must be a string"),
    ("[web]\nlisten = \"localhost\"\n", "web.listen", "HOST:PORT"),
    ("[web]\nlisen = \"127.0.0.1:80\"\n", "web.lisen", "unknown key"),
    ("[databse]\nurl = \"sqlite://\"\n", "databse", "unknown section"),
    ("[database]\nurl = \"postgres://x\"\n", "database.url", "must start with"),
    ("[sms]\ncountry = \"XX\"\n", "sms.country", "two-letter"),
    ("[sms]\npoll_interval = 0\n", "sms.poll_interval", "greater than zero"),
    ("[[modem]]\ndevice = \"/dev/ttyUSB0\"\n", "modem[0].name", "needs a name"),
    ("[[modem]]\nname = \"a\"\ndevise = \"/dev/ttyUSB0\"\n", "modem[0].devise",
     "neither a gateway key nor a gammurc key"),
    ("[[modem]]\nname = \"a\"\ndevice = \"x\"\n[[modem]]\nname = \"a\"\ndevice = \"y\"\n",
     "modem[1].name", "duplicate"),
    ("[ami]\nusername = \"h\"\n", "ami.secret", "missing"),
    ("[[modem]]\nname = \"a\"\ndevice = \"x\"\nprefixes = \"0811\"\n", "modem[0].prefixes",
     "list of number prefixes"),
    ("[[modem]]\nname = \"a\"\ndevice = \"x\"\nsend_rate = 0\n", "modem[0].send_rate",
     "above zero"),
    ("[sms]\ndelivery_reports = \"yes\"\n", "sms.delivery_reports", "true or false"),
    ("[agi]\nsecret_file = 1\n", "agi.secret_file", "must be a string"),
    ("[agi]\nsecret_file = \" \"\n", "agi.secret_file", "must be a file path"),
    ("[agi]\nsecret = \"x\"\n", "agi.secret", "unknown key (known: listen, secret_file)"),
    ("[web\n", "(file)", "not valid TOML"),
])
def test_bad_config_is_one_line_naming_file_key_problem(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load(path, environ={})
    message = str(error.value)
    assert message.startswith(f"{path}: {key}: ") and problem in message
    assert "\n" not in message


def test_cli_exits_2_with_the_line(tmp_path, capsys):
    path = write(tmp_path, "[web]\nlisen = 1\n")
    assert main(["--config", path, "check"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"helpdesk: {path}: web.lisen: unknown key "
                           "(known: language, listen, secret_file, timezone, trusted_proxies)")


def test_missing_explicit_file(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.toml"), "init"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_run_refuses_an_outdated_schema(tmp_path, capsys):
    path = write(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/empty.db"\n')
    assert main(["--config", path, "run"]) == 2
    assert "run `helpdesk init`" in capsys.readouterr().err
