"""A stand-in for Dify's inner API, for running the plugin under the real plugin daemon.

The daemon (``langgenius/dify-plugin-daemon``, local runtime) forwards the plugin's
backwards invocations to ``{DIFY_INNER_API_URL}/inner/api/…`` (daemon-notes §C). This
server answers the routes App Bridge needs from an emulated
:class:`~devkit.workspace.Workspace`, shaped as Dify answers them:

- ``POST invoke/app``: HTTP 200 and one length-prefixed frame per chunk
  (``<BBHI`` magic ``0x0f``, header length 10, data length, 6 reserved bytes, then
  ``{"data": <chunk>, "error": ""}`` as compact pydantic JSON); a failure before the first
  chunk is Dify's non-200 JSON error; a mid-stream ``read app failed: request failed: X``
  becomes a frame whose ``error`` is ``X``;
- ``POST fetch/app/info``: ``{"data": {"data": <parameters>}, "error": ""}``;
- ``POST invoke/encrypt``: identity "encryption" of endpoint settings
  (``{"data": {"data": {...}}, "error": ""}``).

Every request must carry ``X-Inner-Api-Key``; each one is recorded in :attr:`InnerApi.calls`.
Loopback only. Used by ``tests/realdaemon`` and by hand (docs/real-daemon.md).
"""

from __future__ import annotations

import json
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devkit.workspace import InvocationFailed, Workspace

MAGIC = 0x0F
HEADER_LENGTH = 0x0A
_WRAPPED = re.compile(
    r"^invoke app failed: request failed with status code: (\d+) and respond with: (.*)$", re.S
)
_READ_FAILED = "read app failed: request failed: "


def frame(payload: bytes) -> bytes:
    """One length-prefixed frame as Dify's ``length_prefixed_response`` writes it."""
    return struct.pack("<BBHI", MAGIC, 0, HEADER_LENGTH, len(payload)) + b"\0" * 6 + payload


def compact(obj: object) -> bytes:
    """pydantic ``model_dump_json``: compact separators, raw UTF-8."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Call:
    path: str
    body: dict[str, Any]
    frames: int = 0  # invoke/app: frames written so far
    failure: str = ""  # invoke/app: why the stream stopped early, if it did


def _dify_error(text: str) -> tuple[int, bytes]:
    """The HTTP answer behind a daemon error text of :mod:`devkit.workspace`."""
    wrapped = _WRAPPED.match(text)
    if wrapped:
        return int(wrapped.group(1)), wrapped.group(2).encode()
    body = {"code": "internal_server_error", "message": text, "status": 500}
    return 500, json.dumps(body).encode() + b"\n"


class InnerApi:
    """The stand-in server; ``with InnerApi(workspace, key) as api: api.url``."""

    def __init__(self, workspace: Workspace, key: str, *, port: int = 0) -> None:
        self.workspace = workspace
        self.key = key
        self.calls: list[Call] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> InnerApi:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> InnerApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routes ----------------------------------------------------------------------------
    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, Iterator[bytes] | bytes]:
        """(status, body): bytes for a single JSON answer, an iterator of frames for a stream."""
        call = Call(path, body)
        self.calls.append(call)
        if path == "/inner/api/invoke/encrypt":
            data = body.get("data") if body.get("opt") != "clear" else {}
            return 200, compact({"data": {"data": data or {}}, "error": ""})
        if path == "/inner/api/fetch/app/info":
            try:
                parameters = self.workspace.fetch_app(body)
            except InvocationFailed as failure:
                return _dify_error(str(failure).strip())
            return 200, compact({"data": {"data": parameters}, "error": ""})
        if path == "/inner/api/invoke/app":
            return self._invoke_app(call)
        return 404, b'{"code": "not_found", "message": "Not Found", "status": 404}\n'

    def _invoke_app(self, call: Call) -> tuple[int, Iterator[bytes] | bytes]:
        body = call.body
        chunks = self.workspace.run_app_raw(body, user_id=str(body.get("user_id") or ""))
        try:
            first = next(chunks)
        except InvocationFailed as failure:
            return _dify_error(str(failure).strip())
        except StopIteration:
            return 200, b""

        def frames() -> Iterator[bytes]:
            call.frames += 1
            yield frame(compact({"data": first, "error": ""}))
            try:
                for chunk in chunks:
                    call.frames += 1
                    yield frame(compact({"data": chunk, "error": ""}))
            except InvocationFailed as failure:
                text = str(failure)
                error = text.removeprefix(_READ_FAILED) if text.startswith(_READ_FAILED) else text
                call.failure = error
                yield frame(compact({"error": error}))
            except GeneratorExit:  # the writer stopped: the daemon closed the connection
                call.failure = call.failure or f"reader went away after {call.frames} frames"
                raise
            except Exception as exc:
                call.failure = repr(exc)
                raise

        return 200, frames()


def _handler(api: InnerApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the end of a stream is the end of the connection

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return None

        def _body(self) -> bytes:
            """The request body; the daemon's Go client sends JSON bodies chunked."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_POST(self) -> None:
            raw = self._body()
            if self.headers.get("X-Inner-Api-Key") != api.key:
                self._send(401, b'{"code": "unauthorized", "message": "Unauthorized"}\n')
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, b'{"code": "invalid_param", "message": "invalid json"}\n')
                return
            status, answer = api.answer(self.path.split("?", 1)[0], body)
            if isinstance(answer, bytes):
                self._send(status, answer)
                return
            self.send_response(status)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                for piece in answer:
                    self.wfile.write(piece)
                    self.wfile.flush()
            except OSError:  # the daemon went away; the frames generator records it
                return
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
