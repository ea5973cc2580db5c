"""The TOML configuration file: loaded once, validated up front, then read-only.

Every mistake is reported as one ConfigError line naming the file, the key and the
problem, so `helpdesk` can print it and exit with code 2.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = "helpdesk.toml"

# gammurc keys (see gammurc(5)) mapped to python-gammu's SetConfig names. A modem table
# holds `name` plus these, passed to Gammu unchanged.
GAMMU_KEYS = {
    "device": "Device",
    "connection": "Connection",
    "model": "Model",
    "synchronizetime": "SyncTime",
    "logfile": "DebugFile",
    "logformat": "DebugLevel",
    "use_locking": "LockDevice",
    "startinfo": "StartInfo",
    "features": "Features",
}


class ConfigError(Exception):
    """One line for a person: which file, which key, what is wrong."""

    def __init__(self, path, key, problem):
        super().__init__(f"{path}: {key}: {problem}")


@dataclass(frozen=True)
class ModemConfig:
    name: str
    gammu: dict  # python-gammu SetConfig dict
    prefixes: tuple[str, ...] = ()  # national prefixes this SIM sends to, e.g. "0811"
    send_rate: float | None = None  # texts per minute at most; None: as fast as it goes
    ussd_balance: str | None = None  # USSD code that answers the SIM's credit, e.g. "*888#"
    ussd_every: float = 21600.0      # seconds between two balance checks (6 hours)
    balance_floor: int | None = None  # rupiah: below this the modem is yellow and alerts

    def routes(self, number: str, country_code: str = "62") -> bool:
        """Whether an E.164 number starts with one of this modem's prefixes."""
        return any(number.startswith("+" + country_code + p[1:]) if p.startswith("0")
                   else number.lstrip("+").startswith(p.lstrip("+")) for p in self.prefixes)

    @property
    def is_dummy(self) -> bool:
        return self.gammu.get("Model", "").lower() == "dummy"


@dataclass(frozen=True)
class Config:
    path: str = "(defaults)"
    database_url: str = "sqlite:///var/helpdesk.db"
    web_listen: str = "127.0.0.1:8080"
    web_language: str = "id"  # the UI's language for a user who has not chosen one
    timezone: str = "Asia/Jakarta"  # dates on pages and in reports
    secret_file: str = "var/session.key"
    agi_listen: str = "127.0.0.1:4573"
    agi_secret_file: str = "var/agi.secret"  # the dialplan passes its content (0640)
    ami: dict | None = None
    country: str = "ID"
    language: str = "id"
    poll_interval: float = 0.5
    poll_interval_notified: float = 5.0  # fallback poll while the modem announces texts
    multipart_timeout: float = 600.0
    send_attempts: int = 5
    delivery_reports: bool = False
    signal_yellow: int = 30     # percent; below it a modem is yellow
    signal_red: int = 10        # percent; below it a modem is red
    stale_after: float = 120.0  # seconds without an answer before a modem is red
    alert_numbers: tuple[str, ...] = ()  # on-call phones told when a modem turns red
    alert_backlog: int = 100    # queued texts that make an alert
    bank_accounts: tuple[str, ...] = ()
    unique_code_max: int = 999
    warranty_replacement: str = "rest"  # a replacement's warranty: "rest" or "new"
    modems: tuple[ModemConfig, ...] = field(default_factory=tuple)

    def modem(self, name: str) -> ModemConfig:
        for modem in self.modems:
            if modem.name == name:
                return modem
        known = ", ".join(m.name for m in self.modems) or "none"
        raise ConfigError(self.path, "modem", f"no modem named {name!r} (configured: {known})")


# section -> key -> (Config attribute, type, check or None)
def _positive(value):
    return None if value > 0 else "must be greater than zero"


def _listen(value):
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return 'must be "HOST:PORT", for example "127.0.0.1:8080"'
    return None


def _file_path(value):
    return None if value.strip() else 'must be a file path, like "var/agi.secret"'


def _language(value):
    return None if value in ("id", "en") else 'must be "id" (Bahasa Indonesia) or "en"'


def _country(value):
    import phonenumbers

    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        return "must be a two-letter country code such as \"ID\""
    return None


def _db_url(value):
    if not value.startswith(("sqlite:", "mysql+pymysql:", "mariadb+pymysql:",
                             "postgresql+psycopg:")):
        return 'must start with "sqlite:", "mysql+pymysql:" or "postgresql+psycopg:"'
    return None


def _accounts(value):
    if not all(isinstance(v, str) and v.strip() for v in value):
        return 'must be a list of strings, like ["BCA 1234567890 a.n. Toko Maju"]'
    return None


def _timezone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return 'must be a time zone name such as "Asia/Jakarta" or "Asia/Makassar"'
    return None


def _replacement(value):
    return None if value in ("rest", "new") else (
        'must be "rest" (the rest of the original warranty) or "new" (a new warranty period)')


def _percent(value):
    return None if 0 <= value <= 100 else "must be a percentage, 0 to 100"


def _phones(value):
    if not all(isinstance(v, str) and v.strip() for v in value):
        return 'must be a list of phone numbers, like ["081234567890"]'
    return None


SCHEMA = {
    "database": {"url": ("database_url", str, _db_url)},
    "web": {"listen": ("web_listen", str, _listen), "secret_file": ("secret_file", str, None),
            "language": ("web_language", str, _language),
            "timezone": ("timezone", str, _timezone)},
    "agi": {"listen": ("agi_listen", str, _listen),
            "secret_file": ("agi_secret_file", str, _file_path)},
    "sms": {
        "country": ("country", str, _country),
        "language": ("language", str, _language),
        "poll_interval": ("poll_interval", (int, float), _positive),
        "poll_interval_notified": ("poll_interval_notified", (int, float), _positive),
        "multipart_timeout": ("multipart_timeout", (int, float), _positive),
        "send_attempts": ("send_attempts", int, _positive),
        "delivery_reports": ("delivery_reports", bool, None),
    },
    "health": {
        "signal_yellow": ("signal_yellow", int, _percent),
        "signal_red": ("signal_red", int, _percent),
        "stale_after": ("stale_after", (int, float), _positive),
        "alert_numbers": ("alert_numbers", list, _phones),
        "alert_backlog": ("alert_backlog", int, _positive),
    },
    "payments": {
        "accounts": ("bank_accounts", list, _accounts),
        "unique_code_max": ("unique_code_max", int, _positive),
    },
    "warranty": {"replacement": ("warranty_replacement", str, _replacement)},
}
AMI_KEYS = {"host": str, "port": int, "username": str, "secret": str}


def load(path: str | None = None, environ=os.environ) -> Config:
    """Read and validate the configuration; a missing default file means all defaults."""
    explicit = path or environ.get("HELPDESK_CONFIG")
    path = explicit or DEFAULT_PATH
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(path, "(file)", "file not found") from None
        data = {}
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "(file)", f"not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(path, "(file)", e.strerror or str(e)) from None
    config = parse(data, path)
    if environ.get("HELPDESK_DATABASE_URL"):
        url = environ["HELPDESK_DATABASE_URL"]
        problem = _db_url(url)
        if problem:
            raise ConfigError("HELPDESK_DATABASE_URL", "database.url", problem)
        config = dataclasses.replace(config, database_url=url)
    return config


def parse(data: dict, path: str = "(config)") -> Config:
    """Validate a parsed TOML document into a Config."""
    values = {"path": str(path)}
    for section, body in data.items():
        if section == "modem":
            continue
        if section == "ami":
            values["ami"] = _parse_ami(body, path)
            continue
        if section not in SCHEMA:
            known = ", ".join(sorted([*SCHEMA, "ami", "modem"]))
            raise ConfigError(path, section, f"unknown section (known: {known})")
        if not isinstance(body, dict):
            raise ConfigError(path, section, "must be a table, like [" + section + "]")
        for key, value in body.items():
            name = f"{section}.{key}"
            if key not in SCHEMA[section]:
                known = ", ".join(sorted(SCHEMA[section]))
                raise ConfigError(path, name, f"unknown key (known: {known})")
            attr, kind, check = SCHEMA[section][key]
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
                raise ConfigError(path, name, f"must be {_kind_name(kind)}, not {value!r}")
            problem = check(value) if check else None
            if problem:
                raise ConfigError(path, name, problem)
            if kind == (int, float):
                value = float(value)
            elif kind is list:
                value = tuple(value)
            values[attr] = value
    if "country" in values:
        values["country"] = values["country"].upper()
    values["modems"] = _parse_modems(data.get("modem", []), path)
    return Config(**values)


def _kind_name(kind):
    if kind == (int, float):
        return "a number"
    return {str: "a string", int: "a whole number", list: "a list",
            bool: "true or false"}[kind]


def _parse_ami(body, path):
    if not isinstance(body, dict):
        raise ConfigError(path, "ami", "must be a table, like [ami]")
    for key, value in body.items():
        if key not in AMI_KEYS:
            raise ConfigError(path, f"ami.{key}", f"unknown key (known: {', '.join(AMI_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, AMI_KEYS[key]):
            raise ConfigError(path, f"ami.{key}", f"must be {_kind_name(AMI_KEYS[key])}")
    for key in ("username", "secret"):
        if key not in body:
            raise ConfigError(path, f"ami.{key}", "missing: [ami] needs username and secret")
    return {"host": "127.0.0.1", "port": 5038, **body}


# The gateway's own keys in a [[modem]] table; everything else goes to Gammu.
OWN_MODEM_KEYS = ("prefixes", "send_rate", "ussd_balance", "ussd_every", "balance_floor")
_USSD_CODE = re.compile(r"[*#][0-9*#]{1,30}")


def _modem_option(path, where, key, value):
    if key == "ussd_balance":
        if not isinstance(value, str) or not _USSD_CODE.fullmatch(value):
            raise ConfigError(path, where, 'must be a USSD code of digits, * and #, like "*888#"')
        return value
    if key == "ussd_every":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 60:
            raise ConfigError(path, where, "must be a number of seconds, at least 60")
        return float(value)
    if key == "balance_floor":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(path, where, "must be a whole number of rupiah, 0 or more")
        return value
    if key == "prefixes":
        if not isinstance(value, list) or not all(
                isinstance(p, str) and p.lstrip("+").isdigit() for p in value):
            raise ConfigError(path, where, 'must be a list of number prefixes, like ["0811", '
                                           '"0812", "+62852"]')
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(path, where, "must be a number of texts per minute above zero")
    return float(value)


def _parse_modems(tables, path):
    if not isinstance(tables, list):
        raise ConfigError(path, "modem", "must be an array of tables, written [[modem]]")
    modems, seen = [], set()
    for i, table in enumerate(tables):
        where = f"modem[{i}]"
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(path, f"{where}.name", "missing: every [[modem]] needs a name")
        if name in seen:
            raise ConfigError(path, f"{where}.name", f"duplicate modem name {name!r}")
        seen.add(name)
        gammu, own = {}, {}
        for key, value in table.items():
            if key == "name":
                continue
            if key in OWN_MODEM_KEYS:
                own[key] = _modem_option(path, f"{where}.{key}", key, value)
                continue
            if key not in GAMMU_KEYS:
                known = ", ".join(["name", *OWN_MODEM_KEYS, *GAMMU_KEYS])
                raise ConfigError(path, f"{where}.{key}",
                                  f"neither a gateway key nor a gammurc key (known: {known})")
            if not isinstance(value, (str, bool, int)):
                raise ConfigError(path, f"{where}.{key}", "must be a string")
            gammu[GAMMU_KEYS[key]] = str(value) if not isinstance(value, bool) else (
                "yes" if value else "no")
        if "Device" not in gammu:
            raise ConfigError(path, f"{where}.device", "missing: every [[modem]] needs a device")
        gammu.setdefault("Connection", "at")
        modems.append(ModemConfig(name=name, gammu=gammu, **own))
    return tuple(modems)


def listen_endpoint(listen: str) -> str:
    """'127.0.0.1:8080' -> a Twisted server endpoint string."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    return f"tcp:{port}:interface={host.replace(':', chr(92) + ':')}"


def dummy_inbox(modem: ModemConfig) -> Path:
    """Where a phone's text lands in a simulated (dummy driver) modem."""
    return Path(modem.gammu["Device"]) / "sms" / "1"
