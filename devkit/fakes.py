"""Loopback fakes of the platform APIs the reply channels call (``bridge.replies``).

One small threaded HTTP server on 127.0.0.1 serves every platform under its own prefix, with
the real APIs' paths below it, and records each call (method, path, headers, JSON body)::

    with FakePlatforms() as fakes:                 # a free port; fakes.stop() at exit
        env = fakes.environment()                  # {"APP_BRIDGE_SLACK_API": "http://…", …}
        fakes.script("slack", retry_after(1))      # next Slack call: 429 Retry-After: 1
        …                                          # then the default success answers again
        calls = fakes.wait_for("slack", 1)         # the calls Slack received (bounded wait)

Set :meth:`FakePlatforms.environment` in the plugin process's environment (the channels read
it once) so replies reach the fakes; the SSRF guard trusts those operator-set bases. The
default answers are the platforms' success shapes (Slack ``{"ok": true, …}``, Telegram
``{"ok": true, "result": …}``, GitHub/GitLab ``201``); a call without the credential the real
API demands gets the real API's refusal (Slack ``200 {"ok": false, "error": "not_authed"}``,
others ``401``). ``GET /_fake/calls?after=N`` returns the calls recorded after the first N as
JSON, so another process (``./dev deliver``) can read what the platforms received.

``python -m devkit.fakes [--port 5003]`` runs them alone and prints the environment to set.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_PORT = 5003
PLATFORMS = ("slack", "discord", "telegram", "line", "whatsapp", "github", "gitlab", "callback")
# platform → the path under the fake's root that stands for the real API base
PREFIXES = {
    "slack": "/slack/api",
    "discord": "/discord/api/v10",
    "telegram": "/telegram",
    "line": "/line",
    "whatsapp": "/whatsapp",
    "github": "/github",
    "gitlab": "/gitlab/api/v4",
    "callback": "/callback",
}
ENVIRONMENT = {p: f"APP_BRIDGE_{p.upper()}_API" for p in PLATFORMS if p != "callback"}
MAX_BODY = 1 << 20
MAX_CALLS = 10_000  # recorded calls kept (oldest dropped)


@dataclass(frozen=True)
class Response:
    """A scripted answer."""

    status: int = 200
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None  # raw body instead of ``json``


def retry_after(seconds: int = 1, platform_body: Any = None) -> Response:
    """``429`` with ``Retry-After: seconds``."""
    body = platform_body if platform_body is not None else {"ok": False, "error": "ratelimited"}
    return Response(429, body, {"Retry-After": str(seconds)})


def server_error(status: int = 503) -> Response:
    return Response(status, {"error": "temporarily unavailable"})


@dataclass(frozen=True)
class Call:
    """One request a fake platform received."""

    index: int
    platform: str
    method: str
    path: str  # below the platform's prefix, e.g. "/chat.postMessage"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    json: Any  # the parsed body, or None
    body: bytes
    status: int  # what the fake answered

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["body"] = self.body.decode("utf-8", "replace")
        return data

    @property
    def text(self) -> str:
        """The message text the call carries, whatever the platform's shape."""
        return message_text(self.platform, self.json)


def message_text(platform: str, payload: Any) -> str:
    """The text a platform call posts (Slack ``text``, Discord ``content``, LINE messages…)."""
    if not isinstance(payload, dict):
        return ""
    if platform == "line":
        return "\n".join(
            m.get("text", "") for m in payload.get("messages") or [] if isinstance(m, dict)
        )
    if platform == "whatsapp":
        return str((payload.get("text") or {}).get("body", ""))
    if platform == "callback":
        return str(payload.get("answer") or payload.get("error") or "")
    for key in ("text", "content", "body"):
        if isinstance(payload.get(key), str):
            return payload[key]
    return ""


class FakePlatforms:
    """The fake platform APIs on one loopback port (0: a free one)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.calls: list[Call] = []
        self._dropped = 0
        self._scripts: dict[str, deque[Response]] = {p: deque() for p in PLATFORMS}
        self._changed = threading.Condition()
        self._counter = 0
        fakes = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one segment (no delayed-ACK stall)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return None

            def do_GET(self) -> None:
                fakes._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakePlatforms:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-platforms",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()

    def __enter__(self) -> FakePlatforms:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------------------------

    def base(self, platform: str) -> str:
        """The URL that stands for ``platform``'s API base."""
        return self.url + PREFIXES[platform]

    def environment(self) -> dict[str, str]:
        """``APP_BRIDGE_<PLATFORM>_API`` for every platform, pointing here, and this host in
        ``APP_BRIDGE_REPLY_ALLOWED_HOSTS`` so a ``reply_url`` of :meth:`base` ``("callback")``
        (or a "self-hosted GitLab" here) is reachable."""
        host, port = self.server.server_address[:2]
        return {variable: self.base(p) for p, variable in ENVIRONMENT.items()} | {
            "APP_BRIDGE_REPLY_ALLOWED_HOSTS": f"{host}:{port}"
        }

    def script(self, platform: str, *responses: Response) -> None:
        """Answer the next calls to ``platform`` with ``responses``, in order; afterwards
        the default success answers again."""
        with self._changed:
            self._scripts[platform].extend(responses)

    def reset(self) -> None:
        with self._changed:
            self.calls.clear()
            for queue in self._scripts.values():
                queue.clear()

    # -- inspection --------------------------------------------------------------------------

    def calls_for(self, platform: str) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if c.platform == platform]

    def wait_for(self, platform: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """The calls ``platform`` received once there are at least ``count`` (or the timeout
        passed: then whatever there is)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.calls if c.platform == platform]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._changed.wait(min(left, 0.5))

    # -- serving -----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = min(int(handler.headers.get("Content-Length") or 0), MAX_BODY)
        body = handler.rfile.read(length) if length else b""
        if parts.path == "/_fake/calls" and handler.command == "GET":
            after = int((parse_qs(parts.query).get("after") or ["0"])[0] or 0)
            with self._changed:
                calls = [c.as_dict() for c in self.calls if c.index >= after]
                total = self._counter
            _write(handler, Response(200, {"calls": calls, "next": total}))
            return
        platform, path = _route(parts.path)
        if platform is None:
            _write(handler, Response(404, {"error": f"no fake platform serves {parts.path}"}))
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        with self._changed:
            queue = self._scripts[platform]
            response = queue.popleft() if queue else None
        if response is None:
            response = _default(platform, handler.command, path, headers, payload)
        with self._changed:
            self.calls.append(
                Call(
                    self._counter,
                    platform,
                    handler.command,
                    path,
                    parse_qs(parts.query),
                    headers,
                    payload,
                    body,
                    response.status,
                )
            )
            self._counter += 1
            if len(self.calls) > MAX_CALLS:
                del self.calls[0]
            self._changed.notify_all()
        _write(handler, response)


def _route(path: str) -> tuple[str | None, str]:
    for platform, prefix in PREFIXES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return platform, path[len(prefix) :] or "/"
    return None, path


def _write(handler: BaseHTTPRequestHandler, response: Response) -> None:
    if response.body is not None:
        body = response.body
    elif response.json is None:
        body = b""
    else:
        body = json.dumps(response.json).encode()
    try:
        handler.send_response(response.status)
        names = {k.lower() for k in response.headers}
        for name, value in response.headers.items():
            handler.send_header(name, value)
        if "content-type" not in names and body:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except OSError:
        pass  # the client gave up


_sequence = iter(range(1, 1 << 62))


def _default(  # noqa: PLR0911 - one answer per platform
    platform: str, method: str, path: str, headers: Mapping[str, str], payload: Any
) -> Response:
    """The real API's success shape (or its refusal of a call without credentials)."""
    n = next(_sequence)
    bearer = headers.get("authorization", "").startswith("Bearer ") and len(
        headers.get("authorization", "")
    ) > len("Bearer ")
    data = payload if isinstance(payload, dict) else {}
    if platform == "slack":
        if not bearer:
            return Response(200, {"ok": False, "error": "not_authed"})
        ts = f"{n}.000100"  # like Slack, the answer echoes the message (long for long texts)
        message = {"type": "message", "text": data.get("text"), "user": "U0FAKEBOT",
                   "bot_id": "B0FAKE", "ts": ts}  # fmt: skip
        return Response(200, {"ok": True, "channel": data.get("channel"), "ts": ts,
                              "message": message})  # fmt: skip
    if platform == "discord":
        return Response(200, {"id": str(1_000_000 + n), "content": data.get("content", "")})
    if platform == "telegram":
        if not path.startswith("/bot") or "/" not in path[1:]:
            return Response(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return Response(200, {"ok": True, "result": {"message_id": n, "text": data.get("text")}})
    if platform == "line":
        if not bearer:
            return Response(401, {"message": "Authentication failed"})
        return Response(200, {"sentMessages": [{"id": str(n)}]})
    if platform == "whatsapp":
        if not bearer:
            return Response(401, {"error": {"message": "Invalid OAuth access token", "code": 190}})
        to = data.get("to")
        return Response(200, {"messaging_product": "whatsapp", "contacts": [{"wa_id": to}],
                              "messages": [{"id": f"wamid.FAKE{n}"}]})  # fmt: skip
    if platform == "github":
        if not bearer:
            return Response(401, {"message": "Requires authentication"})
        return Response(201, {"id": n, "body": data.get("body")})
    if platform == "gitlab":
        if not headers.get("private-token"):
            return Response(401, {"message": "401 Unauthorized"})
        return Response(201, {"id": n, "body": data.get("body")})
    return Response(200, {"received": True})


def start(port: int = DEFAULT_PORT) -> FakePlatforms:
    """Start the fakes on ``port`` (for the local runner); call ``.stop()`` when done."""
    return FakePlatforms(port).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    fakes = start(args.port)
    print(f"fake platform APIs on {fakes.url}; set:")
    for name, value in fakes.environment().items():
        print(f"  export {name}={value}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fakes.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
