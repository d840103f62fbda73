"""A reverse proxy in front of a Prometheus, as Mimir's gateway or a managed endpoint puts one there.

It serves the upstream's API under a path prefix, and only to requests that carry the tenant
header and the basic-auth login (or the bearer token) it is told to want; optionally over TLS with
a certificate of a private CA. Its refusals are the ones those setups send: 401 with "no org id"
without the tenant, 401 with a WWW-Authenticate challenge for a bad login, 404 outside the prefix.
It remembers the Authorization headers it saw, so a test can tell which token a run sent.
"""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host",
               "authorization", "x-scope-orgid"}


@dataclass
class ProxyRules:
    """What the proxy wants from a request before it forwards it."""

    upstream: str
    path_prefix: str = "/prometheus"
    tenant: str | None = "team-a"
    username: str | None = "monitor"
    password: str | None = "s3cret-proxy-pass"
    bearer_token: str | None = None
    authorizations: list[str] = field(default_factory=list)

    def refusal(self, headers: Any) -> tuple[int, str] | None:
        """The status and body a request gets instead of an answer; None when it may pass."""
        authorization = headers.get("Authorization") or ""
        self.authorizations.append(authorization)
        if self.tenant is not None and headers.get("X-Scope-OrgID") != self.tenant:
            return 401, "no org id\n"
        if self.bearer_token is not None and authorization != f"Bearer {self.bearer_token}":
            return 401, "invalid bearer token\n"
        if self.username is not None:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if authorization != f"Basic {expected}":
                return 401, "<html><head><title>401 Authorization Required</title></head><body></body></html>\n"
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        rules = self.server.rules
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        refused = rules.refusal(self.headers)
        if refused is None and not self.path.startswith(rules.path_prefix + "/"):
            refused = (404, "404 page not found\n")
        if refused is not None:
            status, text = refused
            extra = {"WWW-Authenticate": 'Basic realm="prometheus"'} if "Authorization Required" in text else {}
            self._send(status, text.encode(), "text/html" if text.startswith("<") else "text/plain", extra)
            return
        upstream = rules.upstream + self.path[len(rules.path_prefix):]
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        answer = requests.request(self.command, upstream, data=body or None, headers=headers, timeout=30)
        self._send(answer.status_code, answer.content, answer.headers.get("Content-Type", "application/json"), {})

    do_POST = do_GET

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rules: ProxyRules) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rules = rules


@contextmanager
def prometheus_proxy(rules: ProxyRules, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve `rules` on a free loopback port (over TLS with `tls`); yield the URL without the prefix."""
    server = _ProxyServer(rules)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
