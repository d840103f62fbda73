"""What stands between a client and the simulated Kubernetes API in real setups: TLS and a proxy.

`tls_front` serves the simulated API over HTTPS on a certificate of a private CA, as a real API
server does, optionally asking for a client certificate of another CA (mTLS); it remembers the
client certificate's common name and the Authorization header of each request. `forward_proxy` is
an HTTP forward proxy (absolute URLs, no CONNECT), as a kubeconfig's `proxy-url` names; it
remembers the URLs it was asked for. Both forward every request, headers included, to their
upstream and answer with what it answered.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
import trustme

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection",
               "proxy-authorization"}


@dataclass
class Seen:
    """What the front or proxy was sent, request by request."""

    url: str = ""
    client_names: list[str | None] = field(default_factory=list)  # client certificate CN, None without one
    authorizations: list[str | None] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # the URL each request asked for, as sent


class _Forwarder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        seen = self.server.seen
        seen.targets.append(self.path)
        seen.authorizations.append(self.headers.get("Authorization"))
        seen.client_names.append(_client_name(self.connection))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        # a proxy is asked for absolute URLs; a front for paths on its upstream
        url = self.path if self.path.startswith("http://") else self.server.upstream + self.path
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        answer = requests.request(self.command, url, data=body or None, headers=headers, timeout=30,
                                  proxies={"http": "", "https": ""})
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET


def _client_name(connection: Any) -> str | None:
    certificate = connection.getpeercert() if isinstance(connection, ssl.SSLSocket) else None
    for rdn in (certificate or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forwarder)
        self.upstream = upstream
        self.seen = Seen()


@contextmanager
def _serving(server: _Server, scheme: str) -> Iterator[Seen]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.seen.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    try:
        yield server.seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def tls_front(upstream: str, certificate: trustme.LeafCert, client_ca: trustme.CA | None = None) -> Iterator[Seen]:
    """Serve `upstream` over HTTPS with `certificate`; with `client_ca`, only to clients with a certificate it
    signed. Yields what it saw; its `url` is https://127.0.0.1:<port>."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    server = _Server(upstream)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with _serving(server, "https") as seen:
        yield seen


@contextmanager
def forward_proxy() -> Iterator[Seen]:
    """An HTTP forward proxy on loopback: yields what it was asked; its `url` is http://127.0.0.1:<port>."""
    with _serving(_Server(""), "http") as seen:
        yield seen
