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
import signal
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bridge.routes import ROUTES  # plain data, the same catalogue the plugin serves
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
    set from the request (``proxy_set_header`` replaces whatever the client sent)."""

    quiet = False

    def proxy_headers(self, host: str) -> list[tuple[str, str]]:
        return [("Dify-Hook-Url", f"http://{host}{self.path}"), ("X-Forwarded-Proto", "http")]

    def replaced_headers(self) -> frozenset[str]:
        return frozenset({"dify-hook-url", "x-forwarded-proto"})


def serve(bridge: Bridge, port: int = 5002, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start the plugin (and the daemon listener it reaches through ``SERVER_PORT``) and
    return the bound (not yet serving) public HTTP server in front of it."""
    bridge.start()
    try:
        return listen(bridge.plugin, port, host, Handler)
    except OSError:
        bridge.stop()
        raise


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


def describe(bridge: Bridge, base: str) -> str:
    """The banner: every endpoint's routes and a curl example."""
    lines = [f"App Bridge local runner on {base}  (Ctrl-C to stop)"]
    if bridge.plugin.server_port:
        lines.append(f"daemon listener (the plugin's SERVER_PORT): {bridge.plugin.base_url}")
    if bridge.fakes is not None:
        lines.append(f"fake platform APIs for two-way endpoints: {bridge.fakes.url}")
    lines.append("")
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
    parser.add_argument(
        "--fakes-port", type=int, default=FAKES_PORT, help="port of the fake platform APIs"
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the local runner only listens on loopback")
    bridge = Bridge(args.config, fakes_port=args.fakes_port)
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
        bridge.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
