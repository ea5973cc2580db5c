"""One SQLAlchemy session per request, closed (and rolled back if uncommitted) at teardown."""
from __future__ import annotations

from flask import current_app, g


def helpdesk():
    """The daemon's configuration, sessionmaker and outbox callback."""
    return current_app.extensions["helpdesk"]


def get_db():
    if "db" not in g:
        g.db = helpdesk().sessionmaker()
    return g.db


def close_db(_exc=None):
    session = g.pop("db", None)
    if session is not None:
        session.close()


def notify_queued(message_id: int) -> None:
    """Wake the daemon's outbox dispatcher; call only after the commit."""
    callback = helpdesk().on_queued
    if callback is not None:
        callback(message_id)
