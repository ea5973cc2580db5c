"""`helpdesk agi`: the same caller lookup as a stdio AGI script, for sites that prefer one.

Built on pyst2's `asterisk.agi` (stdio AGI works on Python 3; its FastAGI does not).
The dialplan names the script as the first argument:

    AGI(/usr/local/bin/helpdesk-agi,incoming)       ; helpdesk-agi runs `helpdesk agi`
    AGI(/usr/local/bin/helpdesk-agi,answered,${ARG1})
    AGI(/usr/local/bin/helpdesk-agi,hangup)

Queue()'s AGI argument cannot carry arguments: point it at a second wrapper that runs
`helpdesk agi answered`.

Each run starts a Python process and opens the database, so it answers in tens of
milliseconds rather than the FastAGI server's few; the database work is the very same
functions (gateway/desk/calls.py), and the answers are the same channel variables.

It takes no secret, unlike the FastAGI server: Asterisk starts it as its own child and
speaks to it on its own pipes, so no other process can reach it; and running it by hand
already takes the configuration, with the database's password.
"""
from __future__ import annotations

import logging
import os
import sys

from gateway.db.models import utcnow
from gateway.db.transaction import in_transaction
from gateway.desk import calls
from gateway.voice import fastagi

log = logging.getLogger(__name__)


def _sessionmaker(config):
    from gateway.db.engine import make_engine, make_sessionmaker

    return make_sessionmaker(make_engine(config.database_url))


class _Channel:
    """pyst2's AGI with our quoting and forgiving reads (a dead channel answers 511)."""

    def __init__(self, agi):
        self.agi = agi

    def set(self, name, value):
        from asterisk.agi import AGIError

        try:
            self.agi.execute("SET VARIABLE", name, fastagi.quote(value))
        except AGIError as e:
            log.warning("helpdesk agi: SET VARIABLE %s refused: %s", name, e)

    def get(self, name):
        from asterisk.agi import AGIError

        try:
            result = self.agi.execute("GET VARIABLE", name)
        except AGIError:
            return None
        code, value = result.get("result", ("0", ""))
        return value if code == "1" else None


def main(config, argv=None, stdin=None, stdout=None, stderr=None) -> int:
    """Run one AGI request from Asterisk on stdin/stdout; returns the exit code.

    argv: the words after `helpdesk agi` (the AGI's arguments, which Asterisk also
    passes in the agi_arg_N header); the first names the script.
    """
    from asterisk.agi import AGI, AGIHangup

    devnull = None
    if stderr is None:  # pyst2 traces every line to stderr, which Asterisk logs
        devnull = stderr = open(os.devnull, "w")
    try:
        agi = AGI(stdin=stdin or sys.stdin, stdout=stdout or sys.stdout, stderr=stderr)
        request = fastagi.AGIRequest(agi.env)
        args = list(argv) if argv else request.args
        script = args[0] if args else request.script
        channel = _Channel(agi)
        sessions = _sessionmaker(config)
        now = utcnow()
        if script == "incoming":  # answer first, then file: as the FastAGI server does
            try:
                info = in_transaction(sessions, calls.lookup_caller, request.callerid,
                                      config.country)
            except Exception:
                log.exception("helpdesk agi: the caller lookup failed")
                info = None
            try:
                for name, value in fastagi.variables_for(info):
                    channel.set(name, value)
            finally:
                in_transaction(sessions, calls.incoming_call, request.uniqueid,
                               request.callerid, config.country, now)
        elif script == "answered":
            if len(args) > 1 and args[1]:
                uniqueid, operator_channel = args[1], request.channel
            else:
                uniqueid = request.uniqueid
                operator_channel = channel.get(fastagi.MEMBER_VARIABLE)
            in_transaction(sessions, calls.call_answered, uniqueid, operator_channel, now)
        elif script == "hangup":
            values = {name: channel.get(name) for name in fastagi.HANGUP_READS}
            in_transaction(sessions, calls.call_ended, request.uniqueid, request.callerid,
                           values["HELPDESK_HOURS"], values["QUEUESTATUS"],
                           values["DIALSTATUS"], values["HANGUPCAUSE"], config.country,
                           config.language, now)
        else:
            print(f"helpdesk agi: no script {script!r}; give one of "
                  f"{', '.join(fastagi.SCRIPTS)} as the AGI's first argument", file=sys.stderr)
            return 2
        return 0
    except AGIHangup:
        return 0
    finally:
        if devnull is not None:
            devnull.close()
