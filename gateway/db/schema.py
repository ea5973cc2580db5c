"""Schema migrations with Alembic: `helpdesk init` upgrades, `run` refuses an old schema."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutdated(Exception):
    pass


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create an empty database at head, or bring an older one up to it."""
    command.upgrade(_alembic_config(engine), "heads")


def check_current(engine: Engine) -> None:
    """Raise SchemaOutdated with the command to run unless the schema is at head."""
    heads = set(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        head = ", ".join(sorted(heads))
        state = ("has no helpdesk schema" if not current
                 else f"is at schema {', '.join(sorted(current))}")
        raise SchemaOutdated(
            f"the database {engine.url.render_as_string(hide_password=True)} {state}, "
            f"this version needs {head}: run `helpdesk init` to create or upgrade it")
