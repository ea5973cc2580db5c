"""`helpdesk`: the command line of the contract."""
from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path

from gateway import config as config_module

EXIT_USAGE = 2
DEMO_DIR = Path("var")
DEMO_CONFIG = DEMO_DIR / "demo.toml"
DEMO_PASSWORD = DEMO_DIR / "demo-admin-password"


class CommandError(Exception):
    """A sentence for the user; exit code 2."""


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return cmd_demo(args)
        cfg = config_module.load(args.config)
        return args.handler(cfg, args)
    except (config_module.ConfigError, CommandError) as e:
        print(f"helpdesk: {e}", file=sys.stderr)
        return EXIT_USAGE
    except _schema_outdated() as e:
        print(f"helpdesk: {e}", file=sys.stderr)
        return EXIT_USAGE
    except _db_unreachable() as e:
        print(f"helpdesk: cannot reach the database: {getattr(e, 'orig', e)}", file=sys.stderr)
        return 1


def _schema_outdated():
    from gateway.db.schema import SchemaOutdated

    return SchemaOutdated


def _db_unreachable():
    from sqlalchemy.exc import OperationalError

    return OperationalError


def _parser():
    parser = argparse.ArgumentParser(prog="helpdesk", description=__doc__)
    parser.add_argument("--config", metavar="FILE",
                        help="configuration file (default: $HELPDESK_CONFIG or ./helpdesk.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, handler, help):
        p = sub.add_parser(name, help=help)
        p.set_defaults(handler=handler)
        return p

    command("init", cmd_init, "create or upgrade the schema; create 'admin' on first run")
    command("run", cmd_run, "run the gateway, the operator UI and the API in one process")
    command("web", cmd_web, "run the operator UI and the API alone")
    command("demo", None, "set up a demo under ./var and run it")
    command("check", cmd_check, "Nagios plugin: one status line, exit 0/1/2/3")
    p = command("agi", cmd_agi, "answer one stdio AGI request from Asterisk (dialplans/README.md)")
    p.add_argument("args", nargs="*",
                   help="the AGI script (incoming, answered, hangup) and its arguments")

    user = sub.add_parser("user", help="manage operators").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = user.add_parser("add", help="add a user")
    p.add_argument("name")
    p.add_argument("--role", required=True,
                   choices=["admin", "supervisor", "operator", "sales", "viewer"])
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input instead of generating one")
    p.set_defaults(handler=cmd_user_add)
    p = user.add_parser("list", help="list the users")
    p.set_defaults(handler=cmd_user_list)
    p = user.add_parser("passwd", help="set a user's password (generated unless from stdin)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input instead of generating one")
    p.set_defaults(handler=cmd_user_passwd)
    for action, active in (("disable", False), ("enable", True)):
        p = user.add_parser(action, help=f"{action} a user's login and API tokens")
        p.add_argument("name")
        p.set_defaults(handler=cmd_user_active, active=active)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = token.add_parser("create", help="create an API token and print it once")
    p.add_argument("name")
    p.add_argument("--user", help="act with this user's role (default: an integration "
                                   "token with full API access)")
    p.set_defaults(handler=cmd_token_create)
    p = token.add_parser("list", help="list the API tokens")
    p.set_defaults(handler=cmd_token_list)
    p = token.add_parser("revoke", help="revoke every API token of this name")
    p.add_argument("name")
    p.set_defaults(handler=cmd_token_revoke)

    product = sub.add_parser("product", help="the catalogue").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = product.add_parser("add", help="add or update a product")
    p.add_argument("code")
    p.add_argument("name")
    p.add_argument("price", type=_rupiah)
    p.add_argument("--stock", type=int)
    p.set_defaults(handler=cmd_product_add)

    sms = sub.add_parser("sms", help="texts").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = sms.add_parser("send", help="queue a text to a number")
    p.add_argument("number")
    p.add_argument("text")
    p.set_defaults(handler=cmd_sms_send)

    broadcast = sub.add_parser("broadcast", help="one text to many (STOP is honoured)"
                               ).add_subparsers(dest="action", required=True, metavar="ACTION")
    p = broadcast.add_parser("send", help="send a text to a group, a tag or a file of numbers; "
                                          "opted-out and blocked contacts are skipped")
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--group", help="a contact group's name")
    to.add_argument("--tag", help="a tag")
    to.add_argument("--numbers-file", metavar="FILE",
                    help="a file of numbers, one a line (or a CSV, numbers first)")
    p.add_argument("--preview", action="store_true",
                   help="say who would get it and what it costs; send nothing")
    p.add_argument("text", help="the text; {name}, {phone} and {organisation} are filled in")
    p.set_defaults(handler=cmd_broadcast_send)
    p = broadcast.add_parser("list", help="the recent broadcasts and their progress")
    p.set_defaults(handler=cmd_broadcast_list)
    for action in ("pause", "resume", "cancel"):
        p = broadcast.add_parser(action, help=f"{action} a broadcast")
        p.add_argument("id", type=int)
        p.set_defaults(handler=cmd_broadcast_change, change=action)

    sim = sub.add_parser("sim", help="simulated modems").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = sim.add_parser("inject", help="deliver a text to a simulated modem, as a phone would")
    p.add_argument("--modem", required=True)
    p.add_argument("number")
    p.add_argument("text")
    p.set_defaults(handler=cmd_sim_inject)

    # `import`: data from other systems (gateway.imports); one ACTION per source kind.
    imports = sub.add_parser("import", help="bring in data from another system").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    p = imports.add_parser("kalkun", help="texts, phonebook and groups of a Gammu SMSD + "
                                          "Kalkun database (run again: only what is new)")
    p.add_argument("--from", dest="source_url", required=True, metavar="URL",
                   help="SQLAlchemy URL of the SMSD database, e.g. "
                        "mysql+pymysql://user:password@host/kalkun")
    p.add_argument("--source", metavar="NAME",
                   help="name that identifies this database across runs (default: the URL "
                        "without user and password)")
    p.add_argument("--timezone", metavar="ZONE",
                   help="time zone of the SMSD's local times (default: [web] timezone)")
    p.add_argument("--include-trash", action="store_true",
                   help="also import the texts in Kalkun's Trash and Spam folders")
    p.set_defaults(handler=cmd_import_kalkun)
    p = imports.add_parser("bank", help="a bank statement (CSV as internet banking exports "
                                        "it); credits are matched to open orders")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--bank", metavar="NAME",
                   help="the statement's layout: bca, mandiri, bri, bni or a "
                        "[bank.formats.NAME] (default: detected)")
    p.set_defaults(handler=cmd_import_bank)

    # `export`: a list or a report as a file (gateway.reports); rows stream, never all held.
    p = sub.add_parser("export", help="a list (messages, tickets, orders, payments, calls, "
                                      "contacts) or a report as CSV, XLSX or PDF")
    p.add_argument("kind", metavar="KIND", help="messages, tickets, orders, payments, calls, "
                   "contacts, or a report: sms-traffic, ticket-volume, response-times, sales, "
                   "payment-status, call-outcomes")
    p.add_argument("--from", dest="first", metavar="DATE", required=True,
                   help="first day, YYYY-MM-DD ([web] timezone)")
    p.add_argument("--to", dest="last", metavar="DATE", required=True,
                   help="last day, YYYY-MM-DD (included)")
    p.add_argument("--format", dest="fmt", choices=("csv", "xlsx", "pdf"),
                   help="default: from the -o file's extension, else csv")
    p.add_argument("--group", dest="grouping", default="day", choices=("day", "week", "month"),
                   help="a report's buckets (default: day)")
    p.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    p.set_defaults(handler=cmd_export)
    return parser


def _rupiah(value: str) -> int:
    digits = value.replace(".", "").replace(",", "")
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a price in whole rupiah")
    return int(digits)


def _sessions(cfg, check_schema=True):
    from gateway.db.engine import make_engine, make_sessionmaker
    from gateway.db.schema import check_current

    engine = make_engine(cfg.database_url)
    if check_schema:
        check_current(engine)
    return engine, make_sessionmaker(engine)


def _transaction(cfg, fn, *args):
    from gateway.db.transaction import in_transaction

    _engine, sessions = _sessions(cfg)
    return in_transaction(sessions, fn, *args)


# -- commands ----------------------------------------------------------------------------
def cmd_init(cfg, args, password_file=None) -> int:
    from sqlalchemy import func, select

    from gateway import secret
    from gateway.db.models import User
    from gateway.db.schema import upgrade
    from gateway.desk import users

    engine, _ = _sessions(cfg, check_schema=False)
    upgrade(engine)
    secret.ensure(cfg.secret_file)
    # Group-readable: Asterisk reads it by group to authenticate its FastAGI requests
    # (dialplans/README.md).
    secret.ensure(cfg.agi_secret_file, mode=0o640)
    _, sessions = _sessions(cfg)
    with sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(User)):
            print(f"helpdesk: schema of {engine.url.render_as_string(hide_password=True)} "
                  "is up to date")
            return 0
        password = users.generate_password()
        users.create_user(session, "admin", "admin", password)
    print(f"helpdesk: created the schema and user 'admin' with password: {password}")
    print("helpdesk: this password is shown only once; keep it somewhere safe")
    if password_file:
        _write_private(password_file, password)
    return 0


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def cmd_run(cfg, args, web_only=False) -> int:
    # Start-up creates a few hundred thousand objects that live as long as the process
    # (modules, mappers, compiled statements); the collector would walk them again and
    # again and free none. It waits until they are built, then leaves them out for good.
    gc.disable()
    try:
        from twisted.internet import reactor

        from gateway.daemon.logs import setup_logging
        from gateway.daemon.service import make_service

        setup_logging()
        if not cfg.modems and not web_only:
            logging.warning("no [[modem]] in %s: running without modems (UI and API only)",
                            cfg.path)
        from twisted.internet import defer
        from twisted.internet.error import CannotListenError

        try:
            top = make_service(cfg, reactor, with_modems=not web_only)
        except FileNotFoundError as e:
            raise CommandError(str(e)) from None
        except CannotListenError as e:    # [agi] listen, bound before anything starts
            raise _cannot_listen(cfg, e, "[agi] listen") from None
    finally:
        gc.freeze()
        gc.enable()
    try:
        top.startService()
    except CannotListenError as e:
        # What started before (thread pools, the FastAGI process) stops with the reactor's
        # help; without it their threads would keep the process alive.
        stopping = defer.maybeDeferred(top.stopService)
        stopping.addBoth(lambda _: reactor.stop())
        reactor.run()
        raise _cannot_listen(cfg, e, "[web] listen") from None
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    print(f"helpdesk: operator UI on http://{cfg.web_listen}/", flush=True)
    reactor.run()
    return 0


def _cannot_listen(cfg, e, key: str) -> CommandError:
    return CommandError(f"cannot listen on {e.interface or '*'}:{e.port} ({e.socketError}); "
                        f"choose another {key} in {cfg.path}")


def cmd_web(cfg, args) -> int:
    return cmd_run(cfg, args, web_only=True)


def cmd_demo(args) -> int:
    """Everything for a first look: SQLite and a simulated modem under ./var."""
    path = args.config or os.environ.get("HELPDESK_CONFIG")
    if not path:
        DEMO_DIR.mkdir(exist_ok=True)
        path = str(DEMO_CONFIG)
        if not DEMO_CONFIG.exists():
            DEMO_CONFIG.write_text(DEMO_TOML)
    cfg = config_module.load(path)
    cmd_init(cfg, args, password_file=DEMO_PASSWORD)
    print(f"helpdesk: configuration {path}")
    print(f"helpdesk: log in at http://{cfg.web_listen}/ as admin, password: "
          f"{_demo_password()}")
    for modem in cfg.modems:
        if modem.is_dummy:
            print(f"helpdesk: send a text with: {_me()} --config {path} sim inject "
                  f"--modem {modem.name} 081234567890 \"KOMPLAIN pulsa belum masuk\"")
    return cmd_run(cfg, args)


def _me() -> str:
    """How the user called us, so a printed command can be pasted as it is."""
    return sys.argv[0] if os.sep in sys.argv[0] else "helpdesk"


def _demo_password() -> str:
    try:
        return DEMO_PASSWORD.read_text().strip()
    except FileNotFoundError:
        return "(set before this demo; reset it with `helpdesk user add`)"


DEMO_TOML = """\
# Demo configuration written by `helpdesk demo`: SQLite and one simulated modem.
[database]
url = "sqlite:///var/helpdesk.db"

[web]
listen = "127.0.0.1:8080"
secret_file = "var/session.key"

[sms]
country = "ID"
language = "id"

[[modem]]
name = "modem1"
connection = "none"
model = "dummy"
device = "var/modem1"
"""


def cmd_user_add(cfg, args) -> int:
    from gateway.desk import users

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        generated = False
    else:
        password, generated = users.generate_password(), True
    try:
        _transaction(cfg, lambda s: users.create_user(s, args.name, args.role, password).id)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"helpdesk: user {args.name!r} added with role {args.role}"
          + (f", password: {password}" if generated else ""))
    return 0


def cmd_token_create(cfg, args) -> int:
    from gateway.desk import users

    try:
        token = _transaction(cfg, users.create_token, args.name, args.user)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(token)
    return 0


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def cmd_user_list(cfg, args) -> int:
    from gateway.desk import users

    rows = _transaction(cfg, lambda s: [(u.name, u.role, u.active, u.created_at)
                                        for u in users.list_users(s)])
    for name, role, active, created in rows:
        print(f"{name}\t{role}\t{'active' if active else 'disabled'}\t{_when(created)}")
    return 0


def cmd_user_passwd(cfg, args) -> int:
    from gateway.desk import users

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None

    def reset(session):
        return users.reset_password(session, users.get_user(session, args.name), None,
                                    password, via="cli")
    try:
        new = _transaction(cfg, reset)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"helpdesk: password of {args.name!r} changed"
          + ("" if args.password_stdin else f", new password: {new}"))
    return 0


def cmd_user_active(cfg, args) -> int:
    from gateway.desk import users

    def change(session):
        users.set_active(session, users.get_user(session, args.name), args.active, None,
                         via="cli")
    try:
        _transaction(cfg, change)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"helpdesk: user {args.name!r} {'enabled' if args.active else 'disabled'}")
    return 0


def cmd_token_list(cfg, args) -> int:
    from gateway.desk import users

    rows = _transaction(cfg, lambda s: [
        (t.id, t.name, t.user.name if t.user else "(integration)", t.created_at,
         t.last_used_at, t.revoked) for t in users.list_tokens(s)])
    for token_id, name, user, created, used, revoked in rows:
        print(f"{token_id}\t{name}\t{user}\tcreated {_when(created)}\tlast used {_when(used)}"
              f"\t{'revoked' if revoked else 'live'}")
    return 0


def cmd_token_revoke(cfg, args) -> int:
    from gateway.desk import users

    try:
        count = _transaction(cfg, users.revoke_tokens_named, args.name, None, "cli")
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"helpdesk: revoked {count} token(s) named {args.name!r}")
    return 0


def cmd_product_add(cfg, args) -> int:
    from sqlalchemy import select

    from gateway.db.models import Product

    def add(session):
        product = session.scalar(select(Product).where(Product.code == args.code.upper()))
        if product is None:
            product = Product(code=args.code.upper())
            session.add(product)
        product.name, product.price, product.stock = args.name, args.price, args.stock
        product.active = True

    _transaction(cfg, add)
    print(f"helpdesk: product {args.code.upper()} saved")
    return 0


def cmd_sms_send(cfg, args) -> int:
    from gateway.desk.contacts import contact_for
    from gateway.desk.outbox import OutboxError, queue_message
    from gateway.sms.phone import normalise

    number = normalise(args.number, cfg.country)
    if number is None:
        raise CommandError(f"{args.number!r} is not a phone number")

    def queue(session):
        contact = contact_for(session, number)
        return queue_message(session, number, args.text, contact_id=contact.id).id

    try:
        message_id = _transaction(cfg, queue)
    except OutboxError as e:
        raise CommandError(str(e)) from None
    print(f"helpdesk: text {message_id} to {number} queued")
    return 0


def cmd_broadcast_send(cfg, args) -> int:
    from gateway.desk import broadcasts

    numbers = None
    if args.numbers_file:
        try:
            data = Path(args.numbers_file).read_bytes()
        except OSError as e:
            raise CommandError(f"{args.numbers_file}: {e.strerror or e}") from None
        try:
            numbers = broadcasts.parse_numbers(data, cfg.country)
        except broadcasts.BroadcastError as e:
            raise CommandError(f"{args.numbers_file}: {e}") from None

    def make(session):
        audience = broadcasts.resolve(session, cfg.country, group=args.group, tag=args.tag,
                                      numbers=numbers)
        plan = broadcasts.preview(audience, args.text)
        return (None if args.preview else broadcasts.create(session, plan, None, "cli").id), plan

    try:
        made_id, plan = _transaction(cfg, make)
    except broadcasts.BroadcastError as e:
        raise CommandError(str(e)) from None
    for number, reason in plan.skipped:
        print(f"skipped {number}: {reason.replace('_', ' ')}")
    what = "would go" if made_id is None else "to send"
    print(f"helpdesk: {plan.recipients} texts {what} ({plan.texts} SMS, {plan.coding}, "
          f"up to {plan.max_parts} per text), {len(plan.skipped)} skipped"
          + ("" if made_id is None else f"; broadcast {made_id} made, the daemon sends it "
             f"within {cfg.broadcast_window} on {', '.join(cfg.broadcast_days)}"))
    return 0


def cmd_broadcast_list(cfg, args) -> int:
    from gateway.desk import broadcasts

    def rows(session):
        return [(p.broadcast.id, p.broadcast.created_at, p.broadcast.status, p.broadcast.total,
                 p.sent, sum(p.skipped.values()), p.broadcast.audience)
                for p in broadcasts.progress_of(session, broadcasts.recent(session))]

    print("id\tmade (UTC)\tstatus\ttotal\tsent\tskipped\taudience")
    for row in _transaction(cfg, rows):
        print("\t".join([str(row[0]), _when(row[1]), *map(str, row[2:])]))
    return 0


def cmd_broadcast_change(cfg, args) -> int:
    from gateway.desk import broadcasts

    change = getattr(broadcasts, args.change)
    if not 1 <= args.id < 2**31:  # an INT column on every database
        raise CommandError(f"there is no broadcast {args.id}")
    try:
        _transaction(cfg, lambda session: change(session, args.id, None, via="cli"))
    except (broadcasts.BroadcastError, LookupError) as e:
        raise CommandError(str(e).strip("'\"")) from None
    done = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[args.change]
    print(f"helpdesk: broadcast {args.id} {done}")
    return 0


def cmd_check(cfg, args) -> int:
    from gateway.desk.check import run_check

    line, code = run_check(cfg)
    print(line)
    return code


def cmd_agi(cfg, args) -> int:
    from gateway.voice import stdio_agi as agi_script

    return agi_script.main(cfg, args.args)


def cmd_sim_inject(cfg, args) -> int:
    from gateway.modem import simulator as sim

    try:
        paths = sim.inject(cfg.modem(args.modem), args.number, args.text)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"helpdesk: delivered to {args.modem} in {len(paths)} part(s)")
    return 0


def cmd_import_kalkun(cfg, args) -> int:
    from zoneinfo import ZoneInfo

    from gateway.imports import kalkun

    zone = args.timezone or cfg.timezone
    try:
        ZoneInfo(zone)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        raise CommandError(f"--timezone {zone!r} is not a time zone such as Asia/Jakarta") \
            from None
    _engine, sessions = _sessions(cfg)
    try:
        summary = kalkun.run(args.source_url, sessions, region=cfg.country, local_zone=zone,
                             source=args.source, include_trash=args.include_trash)
    except kalkun.KalkunImportError as e:
        raise CommandError(str(e)) from None
    for line in summary.lines():
        print(f"helpdesk: {line}")
    return 0


def cmd_import_bank(cfg, args) -> int:
    from gateway.desk.payments import Actor
    from gateway.imports import bank

    try:
        with open(args.file, "rb") as f:
            data = f.read(bank.MAX_BYTES + 1)
    except OSError as e:
        raise CommandError(f"{args.file}: {e.strerror or e}") from None
    _engine, sessions = _sessions(cfg)
    with sessions() as session:
        try:
            summary = bank.import_statement(session, data, cfg, Actor(None, "bank import"),
                                            bank=args.bank, file_name=Path(args.file).name)
        except bank.StatementUnreadable as e:
            raise CommandError(f"{args.file}: {e}") from None
    for line in summary.lines():
        print(f"helpdesk: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def cmd_export(cfg, args) -> int:
    from gateway.reports import export, queries

    if args.kind not in export.KINDS:
        raise CommandError(f"unknown KIND {args.kind!r}; choose one of "
                           f"{', '.join(export.KINDS)}")
    fmt = args.fmt
    if fmt is None:
        suffix = Path(args.output).suffix.lower().lstrip(".") if args.output else ""
        fmt = suffix if suffix in export.FORMATS else "csv"
    if args.output is None and fmt != "csv" and sys.stdout.isatty():
        raise CommandError(f"a {fmt.upper()} file is not for a terminal: name one with -o FILE")
    try:
        period = queries.parse_range(args.first, args.last, args.grouping, cfg.timezone)
        if fmt == "pdf":
            export.font_path()  # before any work: say which package is missing
    except (queries.ReportError, export.ExportError) as e:
        raise CommandError(str(e)) from None
    _engine, sessions = _sessions(cfg)
    # Written beside the target and renamed at the end: a failed export leaves no half file.
    target = Path(args.output) if args.output else None
    partial = target.with_name(target.name + ".part") if target else None
    with sessions() as session:
        total = None
        if args.kind in export.LISTS:
            total = export.list_count(session, args.kind, period) if fmt == "pdf" else None
            doc = export.list_document(session, args.kind, period, cfg.company)
        else:
            doc = export.report_document(queries.run(session, args.kind, period), cfg.company)
        try:
            if fmt == "csv":
                with (open(partial, "w", encoding="utf-8", newline="") if partial
                      else _stdout_text()) as out:
                    for chunk in export.csv_chunks(doc):
                        out.write(chunk)
            else:
                out = str(partial) if partial else sys.stdout.buffer
                if fmt == "xlsx":
                    export.write_xlsx(doc, out)
                else:
                    export.write_pdf(doc, out, total=total)
        except BaseException:
            if partial is not None and partial.exists():
                partial.unlink()
            raise
    if partial is not None:
        os.replace(partial, target)
        print(f"helpdesk: {args.kind} {period.label()} written to {target}", file=sys.stderr)
    return 0


def _stdout_text():
    import contextlib

    return contextlib.nullcontext(sys.stdout)
