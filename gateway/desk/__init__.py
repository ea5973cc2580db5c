"""The helpdesk's domain: reading texts, contacts, tickets, orders, payments, replies,
users, calls. Functions take a SQLAlchemy session and return plain data or rows; no
Twisted, no Flask, so the domain is tested without threads or a browser."""
