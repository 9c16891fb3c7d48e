"""A threaded HTTP server on 127.0.0.1 whose next replies a test can script.

Each provider stand-in subclasses `LoopbackServer` and answers in the provider's format.
Scripted actions, one per coming request (then `default`):
- `ok`: accept the message and answer at once.
- `down`: answer 503 without accepting (the provider is unavailable).
- `slow`: accept, then answer only once the client has given up waiting (its timeout ran
  out): the provider has the message, the client does not know it, whatever the speed of
  the machine. The dangerous case for exactly-once.
- `hang`: wait, without accepting, until the client has given up; then answer 503.
- `hold`: accept, set `held`, and answer only when the test sets `release`.
- `drop`: close the connection without accepting or answering.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

ACTIONS = frozenset({"ok", "down", "slow", "hang", "hold", "drop"})


class LoopbackServer(ABC):
    """Runs a provider stand-in in a thread; use as a context manager."""

    def __init__(self) -> None:
        self.plan: deque[str] = deque()
        self.default = "ok"
        self.requests = 0
        self.held = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._local = threading.local()  # the connection each handler thread serves

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> Self:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut the kept-alive connections, as a crashed provider would."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self.connections.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- scripting ----------------------------------------------------------------------
    def script(self, actions: Iterable[str]) -> None:
        """Queue actions for the next requests, in order."""
        actions = list(actions)
        unknown = set(actions) - ACTIONS
        assert not unknown, f"unknown actions {unknown}"
        with self.lock:
            self.plan.extend(actions)

    def next_action(self) -> str:
        with self.lock:
            self.requests += 1
            return self.plan.popleft() if self.plan else self.default

    def pause(self, action: str) -> None:
        """Before answering: apply the timing part of an action."""
        if action in {"slow", "hang"}:
            self._until_client_gives_up()
        elif action == "hold":
            self.held.set()
            self.release.wait(30)

    def _until_client_gives_up(self) -> None:
        """Wait until the client closes the connection, as it does when its timeout runs out
        (at most 30 s): the answer then always comes too late, never just in time."""
        connection: socket.socket = self._local.connection
        connection.settimeout(30)
        with contextlib.suppress(OSError):
            connection.recv(1, socket.MSG_PEEK)  # b"" once the client has hung up

    # -- provider-specific --------------------------------------------------------------
    @abstractmethod
    def handle(self, request: Request) -> Reply:
        """Answer one request in the provider's format."""


class Request:
    """What a handler needs of one HTTP request."""

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        parts = urlsplit(target)
        self.method, self.path, self.headers, self.body = method, parts.path, headers, body
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.form = {
            k: v[0]
            for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }


class Reply:
    """A status, a content type and a body; `drop` closes the socket instead."""

    def __init__(
        self,
        status: int,
        body: bytes | str = b"",
        content_type: str = "application/json",
        *,
        drop: bool = False,
    ) -> None:
        self.status, self.content_type, self.drop = status, content_type, drop
        self.body = body.encode() if isinstance(body, str) else body


def _handler_for(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, delayed ACKs add ~40 ms
            # to every request on a kept-alive connection.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with server.lock:
                server.connections.add(self.connection)

        def finish(self) -> None:
            with contextlib.suppress(OSError):
                super().finish()
            with server.lock:
                server.connections.discard(self.connection)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server._local.connection = self.connection
            request = Request(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            reply = server.handle(request)
            if reply.drop:
                self.close_connection = True
                self.connection.close()
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up waiting (a timeout under test): that is the point

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
