"""Shared fixtures: a real database, a simulated modem on Gammu's dummy driver.

Every database test runs on SQLite (the default a user gets), and again on MariaDB when
HELPDESK_TEST_MYSQL_URL is set, as .ci/run does, and on PostgreSQL when
HELPDESK_TEST_PG_URL is set. Browser tests get the app on a real port
and a headless Chromium (`live_server`, `browser`); they never skip."""
from __future__ import annotations

import os
import shutil
import threading

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from sqlalchemy import text
from werkzeug.serving import make_server

from gateway.config import ModemConfig, parse
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.models import Base
from gateway.db.schema import check_current, upgrade

MYSQL_URL = os.environ.get("HELPDESK_TEST_MYSQL_URL")
PG_URL = os.environ.get("HELPDESK_TEST_PG_URL")
SERVERS = {"mariadb": MYSQL_URL, "postgresql": PG_URL}


@pytest.fixture(params=["sqlite"] + [name for name, url in SERVERS.items() if url])
def db_url(request, tmp_path):
    return SERVERS.get(request.param) or f"sqlite:///{tmp_path}/helpdesk.db"


def _reset_server(engine):
    """An empty schema on the shared MariaDB/PostgreSQL database, then the migrations."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)


def _at_head(engine) -> bool:
    try:
        check_current(engine)
    except Exception:  # no schema, an older one, or a test walked the migrations back
        return False
    # A placeholder migration filled in after this database reached it: same revision,
    # tables missing. Made anew rather than failing every test on a TRUNCATE.
    from sqlalchemy import inspect

    return set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def _empty_server(engine) -> None:
    """Every table emptied and its ids starting at 1 again: far cheaper than running ten
    migrations before each of a thousand tests."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        # A finished test's thread or daemon may still hold a connection and write late:
        # its connections go first, so nothing of it lands in this test's tables.
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            return
        for (other,) in conn.execute(text(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()")).all():
            try:
                conn.execute(text(f"KILL {int(other)}"))
            except Exception:  # it ended by itself meanwhile
                pass
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in tables:
            conn.execute(text(f"TRUNCATE TABLE {table}"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite database the migrations made once; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("template") / "helpdesk.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:  # everything in the main file, none in the WAL
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def engine(db_url, sqlite_template):
    if db_url.startswith("sqlite:///"):
        shutil.copyfile(sqlite_template, db_url[len("sqlite:///"):])
        engine = make_engine(db_url)
    else:
        engine = make_engine(db_url)
        if _at_head(engine):
            _empty_server(engine)
        else:
            _reset_server(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessionmaker(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def modem_dir(tmp_path):
    path = tmp_path / "modem1"
    (path / "sms" / "1").mkdir(parents=True)
    return path


@pytest.fixture
def modem_config(modem_dir):
    return ModemConfig("modem1", {"Device": str(modem_dir), "Connection": "none",
                                  "Model": "dummy"})


@pytest.fixture
def config(db_url, modem_dir, tmp_path):
    return parse({
        "database": {"url": db_url},
        "web": {"secret_file": str(tmp_path / "session.key")},
        "sms": {"multipart_timeout": 600},
        "modem": [{"name": "modem1", "connection": "none", "model": "dummy",
                   "device": str(modem_dir)}],
    }, "test.toml")


# --- Operator UI and JSON API (helpdesk_web) ---------------------------------------
import re  # noqa: E402

from sqlalchemy import select  # noqa: E402

from gateway.db.models import Contact, Message, Ticket, TicketEvent, User, utcnow  # noqa: E402
from gateway.desk import users  # noqa: E402

PASSWORD = "correct horse battery"
SECRET_KEY = b"test-session-secret-0123456789ab"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def db(sessionmaker):
    """A session for arranging data and checking results; expire_all() to see the app's."""
    with sessionmaker() as session:
        yield session


@pytest.fixture
def queued():
    """Message ids the web app handed to on_queued, in order."""
    return []


@pytest.fixture
def make_app(config, sessionmaker, queued):
    """create_app with the test database; keyword arguments go to test_config."""
    from helpdesk_web import create_app

    def make(click_to_call=None, **test_config):
        return create_app(config, sessionmaker, secret_key=SECRET_KEY,
                          on_queued=queued.append, click_to_call=click_to_call,
                          test_config=test_config)
    return make


@pytest.fixture
def app(make_app):
    return make_app(TESTING=True)  # CSRF stays on: the tests post real tokens


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(db):
    def make(name="operator", role="operator", password=PASSWORD) -> User:
        user = users.create_user(db, name, role, password)
        db.commit()
        return user
    return make


@pytest.fixture
def make_ticket(db):
    """A contact, a ticket and one inbound message, committed; returns the ticket."""
    def make(phone="+6281234567890", text="Halo, pesanan saya belum sampai", name=None,
             kind="question", status="new") -> Ticket:
        contact = db.scalar(select(Contact).where(Contact.phone == phone))
        if contact is None:
            contact = Contact(phone=phone, name=name)
            db.add(contact)
            db.flush()
        ticket = Ticket(kind=kind, status=status, contact_id=contact.id)
        db.add(ticket)
        db.flush()
        message = Message(direction="in", number=phone, text=text, status="received",
                          intent="other", contact_id=contact.id, ticket_id=ticket.id,
                          modem="modem1", created_at=utcnow())
        db.add(message)
        db.flush()
        db.add(TicketEvent(ticket_id=ticket.id, kind="message_in", message_id=message.id))
        ticket.waiting_since = message.created_at  # as the intake does: nobody answered yet
        db.commit()
        return ticket
    return make


class AuthActions:
    """Log in and post forms through the test client, CSRF token included."""

    def __init__(self, client, make_user, db):
        self.client, self.make_user, self.db = client, make_user, db

    def csrf_token(self, path="/login") -> str:
        page = self.client.get(path).get_data(as_text=True)
        return CSRF_FIELD.search(page).group(1)

    def login(self, name="operator", role="operator", password=PASSWORD):
        """Log in as `name`, creating the user with `role` first if it does not exist."""
        if self.db.scalar(select(User).where(User.name == name)) is None:
            self.make_user(name, role, password)
        return self.client.post("/login", data={"name": name, "password": password,
                                                "csrf_token": self.csrf_token()})

    def post(self, path, data, **kwargs):
        return self.client.post(path, data={**data, "csrf_token": self.csrf_token("/")},
                                **kwargs)

    def logout(self):
        return self.post("/logout", {})


@pytest.fixture
def auth(client, make_user, db):
    return AuthActions(client, make_user, db)


@pytest.fixture
def api_token(db):
    """A raw API token for an integration (its name is no user's name: full API access)."""
    raw = users.create_token(db, "integration")
    db.commit()
    return raw


@pytest.fixture
def api_headers(api_token):
    return {"Authorization": f"Bearer {api_token}"}


@pytest.fixture
def statements(engine):
    """`with statements() as seen:` lists the SQL the test engine runs inside the block."""
    import contextlib

    from sqlalchemy import event

    @contextlib.contextmanager
    def count():
        seen = []

        def before(_conn, _cursor, statement, *_args):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", before)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", before)
    return count


# Where the browser and its driver are, in the order tests/system-deps.sh looks:
# HELPDESK_CHROMIUM and HELPDESK_CHROMEDRIVER, Debian's chromium and chromium-driver,
# Ubuntu's chromium snap (which carries its driver).
CANDIDATES = [("/usr/bin/chromium", "/usr/bin/chromedriver"),
              ("/snap/bin/chromium", "/snap/bin/chromium.chromedriver")]


def find_chromium() -> tuple[str, str]:
    chosen = os.environ.get("HELPDESK_CHROMIUM"), os.environ.get("HELPDESK_CHROMEDRIVER")
    candidates = [chosen] if any(chosen) else CANDIDATES
    for browser, driver in candidates:
        if all(path and os.access(path, os.X_OK) for path in (browser, driver)):
            return browser, driver
    pytest.fail("Chromium and its driver are missing ("
                + ", ".join(f"{b} + {d}" for b, d in candidates) + "): run "
                "`sh tests/system-deps.sh test` (as root or with sudo it installs them; "
                "`make test` runs it first)", pytrace=False)


@pytest.fixture
def live_server(app):
    """The app on a free port of 127.0.0.1, served from a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    chromium, chromedriver = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking"):
        options.add_argument(arg)
    if not chromium.startswith("/snap/"):  # a snap has a /tmp of its own and makes its profile
        options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    # An explicit driver path, so selenium-manager never tries to download one.
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
