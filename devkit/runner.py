"""Local runner: serve ``/e/<hook_id>/<path>`` on loopback exactly as Dify would.

``python -m devkit.runner [--config devkit/demo.yaml] [--port 5002]`` starts the real
plugin process behind the daemon emulator (:mod:`devkit.daemon`), answers its app and
storage invocations from the demo workspace, and serves HTTP on 127.0.0.1. For every
request it plays nginx (``Dify-Hook-Url``, ``X-Forwarded-Proto``) and the daemon
(:mod:`devkit.listener`: ``copyRequest``, a new session per request, the session ended by
the plugin's ``end``/``error`` or the client's disconnect, chunks relayed and flushed one
by one). Like Dify, the daemon itself listens on a second loopback port, which the plugin
finds in ``SERVER_PORT`` (the banner shows it).
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
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from devkit.daemon import REPO_ROOT, PluginProcess
from devkit.fakes import DEFAULT_PORT as FAKES_PORT
from devkit.fakes import FakePlatforms
from devkit.listener import DaemonHandler, listen
from devkit.workspace import Workspace

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")


class Bridge:
    """The runner's state: the plugin process, the workspace and the endpoints.

    With ``fakes_port`` (``./dev run`` uses 5003; 0 picks a free port) it also serves the fake
    platform APIs of :mod:`devkit.fakes` and points the plugin at them
    (``APP_BRIDGE_<PLATFORM>_API``), so two-way endpoints reply somewhere visible; ``$FAKES``
    in a setting is replaced by the fakes' base URL.
    """

    def __init__(
        self, config_path: Path, root: Path | None = None, *, fakes_port: int | None = None
    ) -> None:
        doc = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        self.workspace = Workspace.from_yaml(config_path)
        self.fakes = _fakes(fakes_port) if fakes_port is not None else None
        fakes_url = self.fakes.url if self.fakes else ""
        self.endpoints: dict[str, dict[str, Any]] = {
            e["hook_id"]: {
                "endpoint_id": e["endpoint_id"],
                "settings": _with_fakes(e.get("settings") or {}, fakes_url),
            }
            for e in doc.get("endpoints", [])
        }
        env = {}
        if self.fakes is not None:
            host = fakes_url.removeprefix("http://")
            env = {**self.fakes.environment(), "APP_BRIDGE_REPLY_ALLOWED_HOSTS": host}
        self.plugin = PluginProcess(self.workspace, root or REPO_ROOT, env=env)
        for hook_id, endpoint in self.endpoints.items():
            self.plugin.register(hook_id, endpoint["endpoint_id"], endpoint["settings"])

    def start(self) -> None:
        if self.fakes is not None:
            self.fakes.start()
        self.plugin.start()

    def stop(self) -> None:
        self.plugin.stop()
        if self.fakes is not None:
            self.fakes.stop()


def _fakes(port: int) -> FakePlatforms:
    """The fake platform APIs on ``port``, or on a free port when it is taken."""
    try:
        return FakePlatforms(port)
    except OSError:
        return FakePlatforms(0)


def _with_fakes(settings: dict[str, Any], fakes_url: str) -> dict[str, Any]:
    if not fakes_url:
        return settings
    return {
        k: v.replace("$FAKES", fakes_url) if isinstance(v, str) else v for k, v in settings.items()
    }


class Handler(DaemonHandler):
    """Dify's nginx in front of the daemon: ``Dify-Hook-Url`` and ``X-Forwarded-Proto`` are
    set from the request (``proxy_set_header`` replaces whatever the client sent); ``GET /``
    is the runner's own index of endpoints."""

    bridge: Bridge  # set on the subclass made by serve()

    quiet = False

    def proxy_headers(self, host: str) -> list[tuple[str, str]]:
        return [("Dify-Hook-Url", f"http://{host}{self.path}"), ("X-Forwarded-Proto", "http")]

    def replaced_headers(self) -> frozenset[str]:
        return frozenset({"dify-hook-url", "x-forwarded-proto"})

    def _handle(self) -> None:
        if self.path.split("?", 1)[0] in ("", "/") and self.command in ("GET", "HEAD"):
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
            body = index_page(self.bridge, f"http://{host}").encode()
            self._send(200, body, "text/html; charset=utf-8")
            return
        super()._handle()

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = _handle


class PortInUse(Exception):
    """The runner's port is taken; the message says how to pick another."""


def serve(bridge: Bridge, port: int = 5002, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Bind the public HTTP server (Dify's nginx in front), then start the plugin and the
    daemon listener it reaches through ``SERVER_PORT``; return the (not yet serving) server."""
    handler = type("RunnerHandler", (Handler,), {"bridge": bridge})
    try:
        server = listen(bridge.plugin, port, host, handler)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            f"port {port} on {host} is already in use; pick another with --port (e.g. --port "
            f"{port + 1}) or stop what is listening there"
        ) from None
    try:
        bridge.start()
    except BaseException:
        server.server_close()
        bridge.stop()
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
        bridge.stop()


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
    ]
    if bridge.plugin.server_port:
        lines.append(f"daemon listener (the plugin's SERVER_PORT): {bridge.plugin.base_url}")
    if bridge.fakes is not None:
        lines.append(f"fake platform APIs for two-way endpoints: {bridge.fakes.url}")
    lines += ["", "endpoints (diagnostics pages; each lists its routes):"]
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
    parser.add_argument(
        "--fakes-port", type=int, default=FAKES_PORT, help="port of the fake platform APIs"
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local runner only listens on loopback")
    bridge = Bridge(args.config, fakes_port=args.fakes_port)
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
        bridge.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
