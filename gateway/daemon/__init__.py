"""The Twisted daemon: the service tree, the database pool and its typed components,
the inbound pipelines, the outbox dispatcher and the health monitor."""
