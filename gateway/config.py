"""The TOML configuration file: loaded once, validated up front, then read-only.

Every mistake is reported as one ConfigError line naming the file, the key and the
problem, so `helpdesk` can print it and exit with code 2.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
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
    # Peers (addresses or networks) whose X-Forwarded-* headers are believed; none by default.
    trusted_proxies: tuple[str, ...] = ()
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
    # Several gateway hosts on one database: this host's name in claimed_by (default: the
    # machine's hostname), and the seconds after which a host that stopped beating is
    # taken for dead (its `sending` texts become `unknown`, never sent again).
    node: str = field(default_factory=socket.gethostname)
    claim_lease: float = 60.0
    signal_yellow: int = 30     # percent; below it a modem is yellow
    signal_red: int = 10        # percent; below it a modem is red
    stale_after: float = 120.0  # seconds without an answer before a modem is red
    alert_numbers: tuple[str, ...] = ()  # on-call phones told when a modem turns red
    alert_backlog: int = 100    # queued texts that make an alert
    bank_accounts: tuple[str, ...] = ()
    unique_code_max: int = 999
    warranty_replacement: str = "rest"  # a replacement's warranty: "rest" or "new"
    # [bank]: confirm the payment of a statement line that matched an order at import
    # (else it waits for one click), and [bank.formats.NAME] statement layouts.
    bank_auto_confirm: bool = False
    bank_formats: dict = field(default_factory=dict)
    # [broadcasts]: texts leave only inside the window, on these days ([web] timezone), and
    # at most `broadcast_rate` per modem per minute (None: each modem's send_rate alone).
    broadcast_window: str = "08:00-20:00"
    broadcast_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    broadcast_rate: float | None = None
    # [reports]: the name on every export, and the daily summary texted to supervisors at
    # daily_summary_at ([web] timezone); no numbers, no summary.
    company: str = "Helpdesk"
    daily_summary_at: str = "18:00"
    daily_summary_to: tuple[str, ...] = ()
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


def _node(value):
    if not value.strip() or len(value) > 128:
        return "must be a name of 1 to 128 characters, unique among the gateway hosts"
    return None


def _lease(value):
    return None if value >= 5 else "must be at least 5 seconds"


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


def _proxies(value):
    for v in value:
        try:
            ipaddress.ip_network(v.strip() if isinstance(v, str) else "", strict=False)
        except ValueError:
            return (f'must be a list of addresses or networks, like ["127.0.0.1", '
                    f'"10.0.0.0/8"]; {v!r} is neither')
    return None


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|(24):(00)")


def parse_window(value: str) -> tuple[int, int] | None:
    """ "08:00-20:00" -> (480, 1200), minutes of the day ("00:00-24:00" is all day);
    None if it is not a window."""
    start, sep, end = value.partition("-")
    times = [_HHMM.fullmatch(t.strip()) for t in (start, end)]
    if not sep or not all(times):
        return None
    first, last = (int(m[1] or m[3]) * 60 + int(m[2] or m[4]) for m in times)
    return None if first == last or first == 24 * 60 else (first, last)


def _window(value):
    return None if parse_window(value) else 'must be "HH:MM-HH:MM", for example "08:00-20:00"'


def _days(value):
    if not value or not all(isinstance(v, str) and v.lower() in WEEKDAYS for v in value):
        return 'must be a list of days such as ["mon", "tue", "wed", "thu", "fri", "sat"]'
    return None


def _phones(value):
    if not all(isinstance(v, str) and v.strip() for v in value):
        return 'must be a list of phone numbers, like ["081234567890"]'
    return None


def _company(value):
    if not value.strip() or len(value) > 200:
        return 'must be the company\'s name (1 to 200 characters), like "Toko Maju"'
    return None


def _clock_time(value):
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        return 'must be a time of day written HH:MM, like "18:00"'
    return None


SCHEMA = {
    "database": {"url": ("database_url", str, _db_url)},
    "web": {"listen": ("web_listen", str, _listen), "secret_file": ("secret_file", str, None),
            "language": ("web_language", str, _language),
            "timezone": ("timezone", str, _timezone),
            "trusted_proxies": ("trusted_proxies", list, _proxies)},
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
        "node": ("node", str, _node),
        "claim_lease": ("claim_lease", (int, float), _lease),
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
    "bank": {"auto_confirm": ("bank_auto_confirm", bool, None),
             "formats": ("bank_formats", dict, None)},  # formats: _parse_bank_formats
    "broadcasts": {"window": ("broadcast_window", str, _window),
                   "days": ("broadcast_days", list, _days),
                   "rate": ("broadcast_rate", (int, float), _positive)},
    "reports": {"company": ("company", str, _company),
                "daily_summary_at": ("daily_summary_at", str, _clock_time),
                "daily_summary_to": ("daily_summary_to", list, _phones)},
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
    # systemd/helpdesk-web@.service: one config file, one port per instance (HOST:PORT).
    if environ.get("HELPDESK_WEB_LISTEN"):
        listen = environ["HELPDESK_WEB_LISTEN"]
        problem = _listen(listen)
        if problem:
            raise ConfigError("HELPDESK_WEB_LISTEN", "web.listen", problem)
        config = dataclasses.replace(config, web_listen=listen)
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
        if section == "bank" and isinstance(body, dict) and "formats" in body:
            values["bank_formats"] = _parse_bank_formats(body["formats"], path)
            body = {k: v for k, v in body.items() if k != "formats"}
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


# [bank.formats.NAME]: a statement layout for gateway.imports.bank. A table named like a
# built-in layout changes only the keys it gives; a new one needs the columns.
BUILT_IN_BANKS = ("bca", "mandiri", "bri", "bni")
BANK_COLUMNS = ("date", "amount", "debit", "credit", "marker", "account")
BANK_TEXTS = ("header", "ignore", "pending", "credit_markers", "debit_markers", "date_format")
BANK_KEYS = ("bank", "description", "decimal", "skip_lines", "delimiter", "signed",
             *BANK_COLUMNS, *BANK_TEXTS)
_FORMAT_NAME = re.compile(r"[a-z0-9_-]{1,32}")


def _bank_column(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)) \
            or (isinstance(value, int) and not 1 <= value <= 200) \
            or (isinstance(value, str) and not value.strip()):
        return "must be a column number (1 is the first) or the column's header text"
    return None


def _bank_format_key(key, value, has_header):
    if key in BANK_COLUMNS:
        problem = _bank_column(value)
        if problem is None and isinstance(value, str) and not has_header:
            problem = "names a header text, so the format needs header = [...]"
        return problem
    if key == "description":
        columns = value if isinstance(value, list) else [value]
        problems = [p for p in map(_bank_column, columns) if p]
        if not columns:
            return "must name at least one column"
        return problems[0] if problems else None
    if key in BANK_TEXTS:
        texts = value if isinstance(value, list) else [value]
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            return 'must be a text or a list of texts, like ["CR", "K"]'
        if key == "date_format" and not all("%d" in t and "%m" in t for t in texts):
            return 'must be strptime formats with %d and %m, like "%d/%m/%Y"'
        return None
    if key == "bank":
        ok = isinstance(value, str) and 0 < len(value.strip()) <= 32
        return None if ok else 'must be the bank\'s short name, like "BCA"'
    if key == "decimal":
        return None if value in (".", ",") else \
            'must be "." (1,500,000.00) or "," (1.500.000,00)'
    if key == "skip_lines":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1000
        return None if ok else "must be a whole number of lines, 0 or more"
    if key == "delimiter":
        return None if value in (",", ";", "\t", "|") else 'must be ",", ";", "\\t" or "|"'
    if key == "signed":
        return None if isinstance(value, bool) else "must be true or false"
    return None


def _parse_bank_formats(formats, path):
    if not isinstance(formats, dict):
        raise ConfigError(path, "bank.formats", "must be tables, written [bank.formats.NAME]")
    parsed = {}
    for name, table in formats.items():
        where = f"bank.formats.{name}"
        if not _FORMAT_NAME.fullmatch(name):
            raise ConfigError(path, where, "a format's name is lower-case letters, digits, "
                                           "- or _ (it is what --bank names)")
        if not isinstance(table, dict):
            raise ConfigError(path, where, f"must be a table, written [{where}]")
        for key, value in table.items():
            if key not in BANK_KEYS:
                raise ConfigError(path, f"{where}.{key}",
                                  f"unknown key (known: {', '.join(sorted(BANK_KEYS))})")
            problem = _bank_format_key(key, value, "header" in table or name in BUILT_IN_BANKS)
            if problem:
                raise ConfigError(path, f"{where}.{key}", problem)
        if name not in BUILT_IN_BANKS:
            has_pair = "debit" in table and "credit" in table
            if ("amount" in table) == has_pair:
                raise ConfigError(path, where, "needs amount (with a CR/DB mark, a marker "
                                               "column or signed = true), or debit and credit")
            if "date" not in table or "description" not in table:
                raise ConfigError(path, where, "needs date and description columns")
        parsed[name] = dict(table)
    return parsed


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


def listen_address(listen: str) -> tuple[str, int]:
    """'127.0.0.1:8080' -> ('127.0.0.1', 8080); '[::1]:8080' -> ('::1', 8080)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def listen_endpoint(listen: str) -> str:
    """'127.0.0.1:8080' -> a Twisted server endpoint string."""
    host, port = listen_address(listen)
    return f"tcp:{port}:interface={host.replace(':', chr(92) + ':')}"


def dummy_inbox(modem: ModemConfig) -> Path:
    """Where a phone's text lands in a simulated (dummy driver) modem."""
    return Path(modem.gammu["Device"]) / "sms" / "1"
