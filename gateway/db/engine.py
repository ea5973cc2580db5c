"""Engine set-up per dialect, in one place."""
from __future__ import annotations

import os

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import sessionmaker


def make_engine(url: str, **options) -> Engine:
    """SQLite: WAL and a busy timeout for several threads. MariaDB (utf8mb4) and
    PostgreSQL: ping, recycle, READ COMMITTED.
    `options` go to create_engine (make_read_engine's)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            directory = os.path.dirname(parsed.database)
            if directory:
                os.makedirs(directory, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
            cur.execute("PRAGMA foreign_keys=ON")
            # The default page cache (2 MiB) holds the indexes of a few thousand texts;
            # beyond that every insert reads its index pages again and filing slows as
            # the database grows (bench/soak_bench.py). 32 MiB, filled only as used.
            cur.execute("PRAGMA cache_size=-32768")
            cur.close()

        return engine
    server = {"pool_pre_ping": True, "pool_recycle": 3600, "pool_size": 10,
              "max_overflow": 10, "isolation_level": "READ COMMITTED"}
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, **{**server, **options})
    if "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return create_engine(parsed, **{**server, **options})


def make_read_engine(url: str) -> Engine:
    """An engine, and so connections, of its own for reads that must never wait behind
    a writer (the caller lookup). Autocommit: each read is one statement that sees the
    last commit, with no BEGIN or ROLLBACK around it; on SQLite in WAL mode a reader is
    never blocked by the writer."""
    return make_engine(url, isolation_level="AUTOCOMMIT")


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
