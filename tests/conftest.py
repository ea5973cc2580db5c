"""Shared fixtures: a real database (SQLite file, or MariaDB when
HELPDESK_TEST_MYSQL_URL is set), a simulated modem on Gammu's dummy driver."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from gateway.config import ModemConfig, parse
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.models import Base
from gateway.db.schema import upgrade

MYSQL_URL = os.environ.get("HELPDESK_TEST_MYSQL_URL")


@pytest.fixture
def db_url(tmp_path):
    return MYSQL_URL or f"sqlite:///{tmp_path}/helpdesk.db"


def _reset_mysql(engine):
    """Start each test from an empty schema on the shared MariaDB test database."""
    Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    if engine.dialect.name == "mysql":
        _reset_mysql(engine)
    upgrade(engine)
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
