"""The operator UI's pages: server-rendered, usable without JavaScript."""
