"""Behind a reverse proxy: X-Forwarded-* believed from `[web] trusted_proxies` only.

werkzeug's ProxyFix believes whoever sends the headers, so anyone who can reach a UI
process directly could claim any client address, scheme or host. Here the direct peer
(REMOTE_ADDR) must be one of the configured proxies before ProxyFix sees the request;
from any other peer the headers are dropped, so no code further in (werkzeug's
`access_route` included) can read a forged one.
"""
from __future__ import annotations

import ipaddress

from flask import has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

# One proxy in front: the last hop of each header is the one our proxy wrote. A path
# prefix (X-Forwarded-Prefix) is not taken: the UI is served at the root of its host.
FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
             "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX")


class TrustedProxies:
    """WSGI middleware: ProxyFix for requests whose peer is a trusted proxy."""

    def __init__(self, app, trusted):
        self.app = app
        self.networks = tuple(ipaddress.ip_network(t.strip(), strict=False) for t in trusted)
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=0)

    def trusts(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address((peer or "").split("%", 1)[0])
        except ValueError:
            return False  # a Unix socket or nothing: not an address we were told of
        # A dual-stack listener shows an IPv4 proxy as ::ffff:a.b.c.d.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.networks and self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for key in FORWARDED:
            environ.pop(key, None)
        return self.app(environ, start_response)


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is marked Secure whenever the request came over HTTPS, which
    behind a TLS-terminating proxy only X-Forwarded-Proto from a trusted proxy tells."""

    def get_cookie_secure(self, app) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)
