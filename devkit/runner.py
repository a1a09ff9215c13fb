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
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bridge.routes import ROUTES  # plain data, the same catalogue the plugin serves
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


def serve(bridge: Bridge, port: int = 5002, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start the plugin and return a bound (not yet serving) HTTP server."""
    bridge.plugin.start()
    handler = type("BoundHandler", (Handler,), {"bridge": bridge})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
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


def describe(bridge: Bridge, base: str) -> str:
    """The banner: every endpoint's routes and a curl example."""
    lines = [f"App Bridge local runner on {base}  (Ctrl-C to stop)", ""]
    for hook_id, endpoint in bridge.endpoints.items():
        app_id = (endpoint["settings"].get("app") or {}).get("app_id", "")
        app = bridge.workspace.apps.get(app_id)
        label = f"{app.name} ({app.mode})" if app else app_id
        lines.append(f"endpoint {hook_id} -> {label}")
        for route in ROUTES:
            lines.append(f"  {route.method:<7} {base}/e/{hook_id}{route.path}")
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
    server = serve(bridge, args.port, args.host)
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
