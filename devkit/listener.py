"""The daemon's HTTP side: ``/e/<hook_id>/<path>`` on loopback, one plugin session per request.

What Dify's plugin daemon does with an endpoint request (daemon-notes §A(1), protocol.md §4),
emulated over a :class:`~devkit.daemon.PluginProcess`:

- the hook id picks the endpoint (its id and settings, as the daemon's database knows them);
  an unknown hook is the daemon's 404, ``PATCH`` is gin's ``NoRoute``;
- ``copyRequest``: forwarding headers stripped, query re-encoded, body cut at 10 MiB,
  ``Dify-Hook-Id`` added, ``Dify-Hook-Url`` kept when the caller sent one (a self-call carries
  the public URL forward) and otherwise built from ``Host``;
- every request opens a **new session**; the session ends when the plugin sends ``end`` or
  ``error``, or when the HTTP client disconnects — then backwards invocations of that session
  are dropped unanswered;
- the response is relayed chunk by chunk, each one flushed.

:class:`DaemonHandler` is the daemon listener itself (the port the plugin finds in
``SERVER_PORT``). The local runner subclasses it to play Dify's nginx in front
(:meth:`DaemonHandler.proxy_headers`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from devkit.wire import BODY_LIMIT, daemon_error_body, daemon_request_bytes

if TYPE_CHECKING:
    from devkit.daemon import PluginProcess

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
WATCH_INTERVAL = 0.05  # how often a waiting request checks that its client is still there


class PluginCrashed(RuntimeError):
    """The plugin process exited or was killed while a request was in flight."""


GIN_JSON = "application/json; charset=utf-8"  # gin's ctx.JSON content type
ROUTE_NOT_FOUND = b'{"code":"not_found","message":"route not found"}'  # gin NoRoute


def daemon_error(status: int, code: int, message: str) -> tuple[int, bytes, str]:
    """The daemon's own error response (protocol.md §4.1), as the real daemon writes it.

    Seen on the real daemon (bdb5642): an unknown hook is ``-400``
    ``PluginDaemonBadRequestError``; a plugin that is not running ``-404``
    ``PluginNotFoundError``.
    """
    return status, daemon_error_body(code, message), GIN_JSON


def client_gone(sock: socket.socket) -> bool:
    """True once the peer has closed its side (EOF) or reset the connection."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class DaemonHandler(BaseHTTPRequestHandler):
    """``/e/<hook_id>/…`` → a new plugin session → the relayed response."""

    server_version = "AppBridgeLocal/1"
    protocol_version = "HTTP/1.1"
    plugin: PluginProcess  # set on the subclass made by :func:`listen`
    quiet = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # -- hooks for a proxy in front --------------------------------------------------
    def proxy_headers(self, host: str) -> list[tuple[str, str]]:
        """Headers a reverse proxy in front would set; the daemon itself adds none."""
        return []

    def replaced_headers(self) -> frozenset[str]:
        """Client headers the proxy overwrites (lower-case)."""
        return frozenset()

    def endpoint(self, hook_id: str) -> tuple[str, dict[str, Any]] | None:
        return self.plugin.endpoints.get(hook_id)

    # -- plumbing --------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data[:BODY_LIMIT])
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)[:BODY_LIMIT] if length else b""

    def _handle(self) -> None:
        parts = self.path.split("/", 3)  # ["", "e", hook_id, rest]
        if len(parts) < 3 or parts[1] != "e" or not parts[2]:
            self._send(404, ROUTE_NOT_FOUND, GIN_JSON)
            return
        hook_id = parts[2].split("?", 1)[0]
        endpoint = self.endpoint(hook_id)
        if endpoint is None:
            self._send(*daemon_error(404, -400, "endpoint not found"))
            return
        endpoint_id, settings = endpoint
        rest = self.path[len(f"/e/{hook_id}") :]
        target = rest if rest.startswith("/") else "/" + rest
        body = self._read_body()
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        replaced = self.replaced_headers()
        headers = [
            (k, v)
            for k, v in self.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in replaced
        ]
        headers += self.proxy_headers(host)
        raw = daemon_request_bytes(
            self.command, target, headers=headers, body=body, hook_id=hook_id, host=host
        )
        try:
            session = self.plugin.open_session(raw, settings, endpoint_id=endpoint_id)
        except PluginCrashed:
            self._send(*daemon_error(404, -404, "plugin not found"))
            return
        watcher = self._watch(session)
        try:
            reply = session.reply()
            if session.ended_by_client:
                self.close_connection = True
                return
            self._relay(reply)
        except PluginCrashed:
            self._send(*daemon_error(404, -404, "plugin not found"))
        finally:
            watcher.set()
            if session.ended_by_client:
                self.close_connection = True

    def _watch(self, session: Any) -> threading.Event:
        """Close the session as soon as the client disconnects (the daemon's CloseNotify)."""
        stop = threading.Event()
        sock = self.connection

        def watch() -> None:
            while not stop.wait(WATCH_INTERVAL) and not session.ended.is_set():
                if client_gone(sock):
                    session.close("client disconnected")
                    return

        threading.Thread(target=watch, name="client-watch", daemon=True).start()
        return stop

    def _relay(self, reply: Any) -> None:
        self.send_response(reply.status)
        fixed_length = any(k.lower() == "content-length" for k in reply.headers)
        for key, value in reply.headers.items():
            if key.lower() not in HOP_BY_HOP or key.lower() == "content-length":
                self.send_header(key, value)
        if not fixed_length:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        head_only = self.command == "HEAD"
        try:
            for chunk in reply.chunks:
                if head_only or not chunk:
                    continue
                if fixed_length:
                    self.wfile.write(chunk)
                else:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            if reply.cut:  # the session ended before the body did: abort, like the daemon
                self.close_connection = True
                return
            if not fixed_length and not head_only:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            reply.close("client disconnected")

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def do_PATCH(self) -> None:  # the daemon registers no PATCH route: gin NoRoute
        self._send(404, ROUTE_NOT_FOUND, GIN_JSON)


def listen(
    plugin: PluginProcess,
    port: int = 0,
    host: str = "127.0.0.1",
    handler: type[DaemonHandler] = DaemonHandler,
) -> ThreadingHTTPServer:
    """A bound (not yet serving) server whose handler talks to ``plugin``."""
    bound = type("BoundHandler", (handler,), {"plugin": plugin})
    server = ThreadingHTTPServer((host, port), bound)
    server.daemon_threads = True
    return server


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[str]:
    """Serve ``server`` in a background thread; yields its base URL; always stops it."""
    thread = threading.Thread(target=server.serve_forever, name="http-listener", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
