"""The operator UI's session secret: made once by `helpdesk init`, kept 0600."""
from __future__ import annotations

import os
import secrets


def ensure(path: str) -> bytes:
    """Read the secret, creating it (owner-only) if it does not exist yet."""
    try:
        with open(path, "rb") as f:
            return f.read().strip()
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(value + b"\n")
    return value


def read(path: str) -> bytes:
    """The secret, or a sentence telling how to create it."""
    try:
        with open(path, "rb") as f:
            return f.read().strip()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"the session secret {path} does not exist: run `helpdesk init` first") from None
