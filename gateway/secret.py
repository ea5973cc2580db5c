"""Secrets in files, made once by `helpdesk init`: the operator UI's session key (0600)
and the FastAGI secret the dialplan passes (0640, so Asterisk can read it by group)."""
from __future__ import annotations

import os
import secrets
import tempfile


class MissingSecret(FileNotFoundError):
    """The secret file is missing or empty; the message says what to run."""


def ensure(path: str, mode: int = 0o600) -> bytes:
    """Read the secret, creating it with exactly this mode if it does not exist yet."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    value = secrets.token_hex(32).encode()  # hex: safe in a URL and in FILTER(0-9a-f)
    fd, partial = tempfile.mkstemp(dir=directory or ".", prefix=".secret-")
    try:
        os.fchmod(fd, mode)  # not left to the umask: Asterisk's group must read 0640
        with os.fdopen(fd, "wb") as f:
            f.write(value + b"\n")
        try:
            # Appears whole or not at all, and never replaces one made meanwhile.
            os.link(partial, path)
        except FileExistsError:
            return _read(path)
    finally:
        os.unlink(partial)
    return value


def read(path: str, name: str = "session secret") -> bytes:
    """The secret, or a sentence telling how to create it."""
    try:
        value = _read(path)
    except FileNotFoundError:
        raise MissingSecret(
            f"the {name} {path} does not exist: run `helpdesk init` first") from None
    if not value:
        raise MissingSecret(f"the {name} {path} is empty: delete it and run `helpdesk init`")
    return value


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read().strip()
