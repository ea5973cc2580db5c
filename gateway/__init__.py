"""The helpdesk gateway daemon: Gammu modems, tickets, outbox, FastAGI, operator UI."""
