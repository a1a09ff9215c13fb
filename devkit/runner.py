"""Local runner: serve ``/e/<hook_id>/<path>`` on loopback exactly as Dify would.

``python -m devkit.runner [--config devkit/demo.yaml] [--port 5002]`` starts the real
plugin process behind the daemon emulator (:mod:`devkit.daemon`), answers its app and
storage invocations from the demo workspace, and serves HTTP on 127.0.0.1. For every
request it plays nginx (``Dify-Hook-Url``, ``X-Forwarded-Proto``) and the daemon
(``copyRequest``: forwarding headers stripped, query re-encoded, 10 MiB body cut, no
``PATCH``, unknown hook → the daemon's 404), then relays the plugin's response chunk by
chunk, flushing each one.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import sys
import threading
from collections.abc import Iterator
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from devkit.daemon import PluginCrashed, PluginProcess
from devkit.wire import BODY_LIMIT, daemon_error_body, daemon_request_bytes
from devkit.workspace import Workspace

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


GIN_JSON = "application/json; charset=utf-8"  # gin's ctx.JSON content type
ROUTE_NOT_FOUND = b'{"code":"not_found","message":"route not found"}'  # gin NoRoute


def daemon_error(status: int, code: int, message: str) -> tuple[int, bytes, str]:
    """The daemon's own error response (protocol.md §4.1), as the real daemon writes it.

    Seen on the real daemon (bdb5642): an unknown hook is ``-400``
    ``PluginDaemonBadRequestError``; a plugin that is not running ``-404``
    ``PluginNotFoundError``.
    """
    return status, daemon_error_body(code, message), GIN_JSON


class Bridge:
    """The runner's state: the plugin process, the workspace and the endpoints."""

    def __init__(self, config_path: Path, root: Path | None = None) -> None:
        doc = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        self.workspace = Workspace.from_yaml(config_path)
        self.endpoints: dict[str, dict[str, Any]] = {
            e["hook_id"]: {"endpoint_id": e["endpoint_id"], "settings": e.get("settings") or {}}
            for e in doc.get("endpoints", [])
        }
        self.plugin = PluginProcess(self.workspace, root) if root else PluginProcess(self.workspace)


class Handler(BaseHTTPRequestHandler):
    server_version = "AppBridgeLocal/1"
    protocol_version = "HTTP/1.1"
    bridge: Bridge  # set on the subclass made by serve()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

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
        if self.path.split("?", 1)[0] in ("", "/") and self.command in ("GET", "HEAD"):
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
            body = index_page(self.bridge, f"http://{host}").encode()
            self._send(200, body, "text/html; charset=utf-8")
            return
        parts = self.path.split("/", 3)  # ["", "e", hook_id, rest]
        if len(parts) < 3 or parts[1] != "e" or not parts[2]:
            self._send(404, ROUTE_NOT_FOUND, GIN_JSON)
            return
        hook_id = parts[2].split("?", 1)[0]
        endpoint = self.bridge.endpoints.get(hook_id)
        if endpoint is None:
            self._send(*daemon_error(404, -400, "endpoint not found"))
            return
        rest = self.path[len(f"/e/{hook_id}") :]
        target = rest if rest.startswith("/") else "/" + rest
        body = self._read_body()
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        headers += [("Dify-Hook-Url", f"http://{host}{self.path}"), ("X-Forwarded-Proto", "http")]
        raw = daemon_request_bytes(
            self.command, target, headers=headers, body=body, hook_id=hook_id, host=host
        )
        try:
            reply = self.bridge.plugin.send(
                raw, endpoint["settings"], endpoint_id=endpoint["endpoint_id"]
            )
        except PluginCrashed:
            self._send(*daemon_error(404, -404, "plugin not found"))
            return
        self._relay(reply)

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
            if not fixed_length and not head_only:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def do_PATCH(self) -> None:  # the daemon registers no PATCH route: gin NoRoute
        self._send(404, ROUTE_NOT_FOUND, GIN_JSON)


class PortInUse(Exception):
    """The runner's port is taken; the message says how to pick another."""


def serve(bridge: Bridge, port: int = 5002, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Bind the HTTP server, then start the plugin; return the (not yet serving) server."""
    handler = type("BoundHandler", (Handler,), {"bridge": bridge})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            f"port {port} on {host} is already in use; pick another with --port (e.g. --port "
            f"{port + 1}) or stop what is listening there"
        ) from None
    server.daemon_threads = True
    try:
        bridge.plugin.start()
    except BaseException:
        server.server_close()
        raise
    return server


@contextlib.contextmanager
def running(bridge: Bridge, port: int = 0) -> Iterator[str]:
    """Serve in a background thread; yields the base URL; always stops server and plugin."""
    server = serve(bridge, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        bridge.plugin.stop()


def _endpoint_label(bridge: Bridge, endpoint: dict[str, Any]) -> str:
    app_id = (endpoint["settings"].get("app") or {}).get("app_id", "")
    app = bridge.workspace.apps.get(app_id)
    return f"{app.name} ({app.mode})" if app else app_id or "no app selected"


def index_page(bridge: Bridge, base: str) -> str:
    """``GET /`` on the runner: every endpoint, linked to its diagnostics page."""
    rows = []
    for hook_id, endpoint in bridge.endpoints.items():
        settings = endpoint["settings"]
        url = f"{base}/e/{hook_id}/"
        scheme = settings.get("webhook_verification") or "api_key"
        reply = settings.get("webhook_reply") or "response"
        rows.append(
            f'<tr><td><a href="{escape(url)}">{escape(hook_id)}</a></td>'
            f"<td>{escape(_endpoint_label(bridge, endpoint))}</td>"
            f"<td><code>{escape(str(scheme))}</code></td><td><code>{escape(str(reply))}</code>"
            "</td></tr>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>App Bridge local runner</title><style>"
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #d0d7de;"
        "padding:.35rem .5rem;text-align:left}code{font:13px ui-monospace,monospace}"
        "</style></head><body><h1>App Bridge local runner</h1>"
        f"<p>{len(rows)} endpoints, served at <code>{escape(base)}/e/&lt;hook_id&gt;/…</code> as "
        "Dify's daemon serves them. Open one to see its diagnostics page; the demo key is "
        "in <code>devkit/demo.yaml</code>.</p>"
        "<table><tr><th>Endpoint</th><th>App</th><th>Webhook verification</th><th>Reply</th>"
        f"</tr>{''.join(rows)}</table></body></html>"
    )


def describe(bridge: Bridge, base: str) -> str:
    """The banner: the index, each endpoint's diagnostics page and a curl example."""
    lines = [
        f"App Bridge local runner on {base}  (Ctrl-C to stop)",
        f"index of endpoints: {base}/",
        "",
        "endpoints (diagnostics pages; each lists its routes):",
    ]
    for hook_id, endpoint in bridge.endpoints.items():
        url = f"{base}/e/{hook_id}/"
        lines.append(f"  GET {url:<48} {_endpoint_label(bridge, endpoint)}")
    lines.append("")
    first = next(iter(bridge.endpoints), "")
    key = (bridge.endpoints.get(first) or {}).get("settings", {}).get("api_key", "")
    lines.append("try:")
    lines.append(f'  curl -s -H "Authorization: Bearer {key}" {base}/e/{first}/')
    lines.append(
        f"  curl -s {base}/e/{first}/v1/chat-messages -H 'Authorization: Bearer {key}' "
        """-H 'Content-Type: application/json' -d '{"query": "Hi", "user": "me"}'"""
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG)
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local runner only listens on loopback")
    bridge = Bridge(args.config)
    try:
        server = serve(bridge, args.port, args.host)
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    base = f"http://{args.host}:{server.server_address[1]}"
    print(describe(bridge, base), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        bridge.plugin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
