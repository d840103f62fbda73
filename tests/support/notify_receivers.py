"""Real receivers for notification tests: an HTTP server that answers like Slack, and an SMTP server.

The HTTP receiver answers each POST from a script of (status, body, headers) replies, then `200 ok`
as Slack does, and keeps every request it got. The SMTP server is aiosmtpd with STARTTLS (or
implicit TLS) on a certificate from a throwaway CA made with trustme, and AUTH checked against one
user. Both listen on 127.0.0.1 and are stopped by the context manager that started them.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme
from requests.structures import CaseInsensitiveDict

from tests.support.servers import free_port

Reply = tuple[int, str, dict[str, str]]


@dataclass
class Received:
    path: str
    headers: CaseInsensitiveDict  # as sent: names in any case
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """What the test scripts and inspects: replies still to give, requests received."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    def reply(self, status: int, body: str = "", **headers: str) -> None:
        self.replies.append((status, body, {k.replace("_", "-"): v for k, v in headers.items()}))


@contextmanager
def http_receiver(path: str = "/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX") -> Iterator[HttpReceiver]:
    """A Slack-like webhook on loopback; its `url` ends with `path` (a secret-looking one by default)."""
    lock = threading.Lock()
    state: list[HttpReceiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                receiver = state[0]
                receiver.requests.append(Received(self.path, CaseInsensitiveDict(self.headers.items()), body))
                status, text, headers = receiver.replies.pop(0) if receiver.replies else (200, "ok", {})
            payload = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(HttpReceiver(f"http://127.0.0.1:{server.server_address[1]}{path}"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    username: str
    password: str
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)


@contextmanager
def smtp_server(tmp_path: Path, tls: str = "starttls", username: str = "monitor",
                password: str = "s3cret-smtp-pass") -> Iterator[SmtpServer]:
    """aiosmtpd with AUTH for one user over `tls`: "starttls" (required), "implicit", or "none"."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server_state = SmtpServer("127.0.0.1", free_port(), ca_file, username, password)

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's naming)
            message = message_from_bytes(envelope.content, policy=policy.default)
            server_state.messages.append(message)  # type: ignore[arg-type]
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
        secret = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
        good = login == username and secret == password
        server_state.logins.append((login, good))
        return AuthResult(success=good, handled=False)

    # aiosmtpd counts only STARTTLS as TLS for `auth_require_tls`; an implicit-TLS socket is TLS anyway
    options: dict[str, object] = {"authenticator": authenticate, "auth_require_tls": tls == "starttls"}
    if tls == "implicit":
        controller = Controller(Handler(), hostname="127.0.0.1", port=server_state.port, ssl_context=context,
                                **options)
    elif tls == "starttls":
        controller = Controller(Handler(), hostname="127.0.0.1", port=server_state.port,
                                tls_context=context, require_starttls=True, **options)
    else:
        controller = Controller(Handler(), hostname="127.0.0.1", port=server_state.port, **options)
    controller.start()
    try:
        yield server_state
    finally:
        controller.stop()
