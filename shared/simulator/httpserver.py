"""The loopback HTTP server both simulated APIs share: threads, faults and a clean stop.

Each request runs on its own thread (the collector and tests send concurrent requests). HTTP/1.1
keep-alive is on, as with real servers. `stop()` releases handlers that hang on purpose and closes
idle keep-alive connections, so a test never waits on a leftover thread or socket.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.simulator.faults import Fault, FaultPlan


@dataclass(slots=True)
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(slots=True)
class Response:
    """One HTTP answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """Base of the simulated servers: subclasses implement `handle` and `fault_response`."""

    def __init__(self) -> None:
        self._faults = FaultPlan()
        self._stopping = threading.Event()
        self._httpd = _HTTPServer(self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hanging handlers and close every open connection."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(
        self, path_prefix: str, status: int, times: int = 1, retry_after: float | None = None,
        body: bytes | None = None, delay_seconds: float = 0.0, reset: bool = False, hang: bool = False,
    ) -> None:
        """Make the next `times` requests under `path_prefix` fail or misbehave (see Fault)."""
        self._faults.add(Fault(path_prefix, status, times, retry_after, body, delay_seconds, reset, hang))

    def clear_faults(self) -> None:
        self._faults.clear()

    def record(self, request: Request) -> None:
        """Hook: note a request before faults apply (request logs)."""

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def fault_response(self, status: int) -> Response:
        """The body this API sends with an injected error status."""
        raise NotImplementedError

    def _respond(self, request: Request) -> tuple[Response | None, Fault | None]:
        """The answer to `request` after faults; None means hang up without answering."""
        self.record(request)
        fault = self._faults.take(request.path)
        if fault is not None:
            if fault.hang:
                self._stopping.wait()
                return None, fault
            if fault.delay_seconds and self._stopping.wait(fault.delay_seconds):
                return None, fault
        if fault is not None and fault.body is not None:
            response = Response(fault.status, fault.body)
        elif fault is not None and fault.status != 200:
            response = self.fault_response(fault.status)
        else:
            try:
                response = self.handle(request)
            except Exception:  # a simulator bug must show as a 500, never kill the thread silently
                traceback.print_exc(file=sys.stderr)
                response = self.fault_response(500)
        if fault is not None and fault.retry_after is not None:
            response.headers["Retry-After"] = f"{fault.retry_after:g}"
        return response, fault


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # the default 5 makes a burst of concurrent clients wait 1 s for a SYN retry

    def __init__(self, owner: LoopbackServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, tests read their own logs
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True), self.headers, body)
        response, fault = self.server.owner._respond(request)
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.reset:
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(response.body)
