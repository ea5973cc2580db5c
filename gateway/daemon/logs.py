"""Logging for the daemon's processes: one format on stderr, Twisted's log inside it."""
from __future__ import annotations

import logging
import os


def setup_logging() -> None:
    from twisted.python import log as twisted_log

    logging.basicConfig(level=os.environ.get("HELPDESK_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema checks are not news
    twisted_log.PythonLoggingObserver().start()
