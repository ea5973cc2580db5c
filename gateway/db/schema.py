"""Schema migrations with Alembic: `helpdesk init` upgrades, `run` refuses an old schema.

Only `init` (and the tests) import Alembic: `run` checks the schema against HEAD with one
query, because loading Alembic and parsing every migration costs a third of a second of
start-up before the first text can be filed.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration's revision; tests/desk/test_migrations.py checks it is Alembic's head.
HEAD = "0019"


class SchemaOutdated(Exception):
    pass


def _alembic_config(engine: Engine):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create an empty database at head, or bring an older one up to it."""
    from alembic import command

    command.upgrade(_alembic_config(engine), "heads")


def check_current(engine: Engine) -> None:
    """Raise SchemaOutdated with the command to run unless the schema is at head."""
    with engine.connect() as conn:
        try:
            current = set(conn.scalars(text("SELECT version_num FROM alembic_version")))
        except DBAPIError as e:  # no such table: a database nobody initialised
            if not _no_table(e):
                raise
            current = set()
            conn.rollback()
    if current != {HEAD}:
        state = ("has no helpdesk schema" if not current
                 else f"is at schema {', '.join(sorted(current))}")
        raise SchemaOutdated(
            f"the database {engine.url.render_as_string(hide_password=True)} {state}, "
            f"this version needs {HEAD}: run `helpdesk init` to create or upgrade it")


def _no_table(error: DBAPIError) -> bool:
    """SQLite says 'no such table', MariaDB error 1146, PostgreSQL SQLSTATE 42P01."""
    orig = error.orig
    code = getattr(orig, "args", (None,))[0]
    return ("no such table" in str(orig) or code == 1146
            or getattr(orig, "sqlstate", None) == "42P01")
