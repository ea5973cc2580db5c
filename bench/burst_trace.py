"""`helpdesk run`, in-process, with timing spans around the spine's steps (diagnosis only).

    .venv/bin/python bench/burst_trace.py --config FILE --trace OUT.jsonl

Runs exactly what `helpdesk --config FILE run` runs (gateway.cli.main), after wrapping a
few module-level functions with a timer that appends one JSON line per call to OUT:
{"fn", "thread", "t0", "t1"} (time.monotonic()). Nothing in gateway/ is changed; the
wrappers replace module attributes, which the daemon looks up at call time. Used by
spine_bench.py --trace to see where a burst's time goes. With BENCH_NO_SEND=1 in the
environment the outbox dispatcher sees no modem, so acknowledgements are queued but not
sent: the inbound path without the competing sends.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent.parent))  # PYTHONPATH wins

from gateway import cli  # noqa: E402
from gateway.daemon import database
from gateway.desk import inbox as inbound_store
from gateway.desk import intake as tickets
from gateway.desk import outbox as outbox_store
from gateway.modem import worker as modem

_lock = threading.Lock()
_out = None


def traced(module, name):
    fn = getattr(module, name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            t1 = time.monotonic()
            extra = {}
            if name in ("_read_inbox", "store_batch", "claim"):
                extra["n"] = len(args[2]) if name == "store_batch" else None
            line = json.dumps({"fn": name, "thread": threading.current_thread().name,
                               "t0": t0, "t1": t1, **extra})
            with _lock:
                _out.write(line + "\n")
                _out.flush()

    setattr(module, name, wrapper)


def main():
    global _out
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--trace", required=True)
    args = parser.parse_args()
    _out = open(args.trace, "w")
    _out.write(json.dumps({"fn": "process_start", "thread": "main", "t0": time.monotonic(),
                           "t1": time.monotonic()}) + "\n")
    traced(modem, "_read_inbox")
    traced(modem, "_delete")
    traced(modem, "_send")
    traced(inbound_store, "store_batch")
    traced(inbound_store, "_file")  # one whole text filed, inside store_batch
    traced(tickets, "receive")      # contact, ticket, ack, inside _file
    traced(outbox_store, "claim")
    traced(database, "in_transaction")  # store_batch's span and its commit
    traced(outbox_store, "mark_sent")
    # _file and receive are called by module-global name inside their own modules, so the
    # wrappers above take effect there too (inbound_store._file, tickets.receive).
    inbound_store.tickets = tickets
    if os.environ.get("BENCH_NO_SEND") == "1":
        # Experiment: acks are queued but never claimed, to see the inbound path alone.
        from gateway.daemon import outbox
        outbox.OutboxDispatcher._available = lambda self: []
    return cli.main(["--config", args.config, "run"])


if __name__ == "__main__":
    sys.exit(main())
