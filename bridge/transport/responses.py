"""werkzeug responses in the shapes the daemon relays faithfully.

Bodies are built whole here; :func:`bridge.transport.lines.bounded` (applied by the adapter to every
response) streams large ones and splits large chunks, so no stdout line nears the daemon's
5 MiB limit (protocol.md §4.5).

Every body of more than one chunk ends through :func:`daemon_safe` (also applied by
:func:`bridge.transport.lines.bounded`): the real daemon
(``internal/core/io_tunnel/endpoint_service.go`` ``InvokeEndpoint``, seen at bdb5642)
starts copying chunks 2..n on a goroutine after the first one, then closes the response
if the plugin's stream is already closed — dropping every chunk not yet copied. A body
whose last chunk and ``end`` reach the daemon together with the first (a fast SSE stream)
arrived cut after its first chunk (docs/real-daemon.md). Holding the end back until
``END_GRACE`` after the first chunk closes that window.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator

from werkzeug import Response

from bridge.transport.encoding import Encoded

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _grace_from_environment(default: float = 0.05) -> float:
    """``APP_BRIDGE_END_GRACE_MS`` (read once): 0 only where no real daemon relays the body
    (``./dev bench`` measures the plugin's own cost with it, docs/performance.md)."""
    raw = os.environ.get("APP_BRIDGE_END_GRACE_MS", "").strip()
    try:
        value = float(raw) / 1000 if raw else default
    except ValueError:
        return default
    return value if 0 <= value <= 1 else default


END_GRACE = _grace_from_environment()  # seconds between a multi-chunk body's first chunk and end


def daemon_safe(chunks: Iterable[bytes], grace: float = END_GRACE) -> Iterator[bytes]:
    """``chunks`` unchanged; a body of several chunks ends no sooner than ``grace`` after
    its first, so the daemon has handed the first chunk on before it sees the end."""
    first_at: float | None = None
    count = 0
    for chunk in chunks:
        if first_at is None:
            first_at = time.monotonic()
        count += 1
        yield chunk
    if first_at is not None and count > 1:
        remaining = grace - (time.monotonic() - first_at)
        if remaining > 0:
            time.sleep(remaining)


def dumps(obj: object) -> str:
    """JSON text as Dify writes it (``json.dumps`` defaults: ASCII, ``", "`` separators)."""
    return json.dumps(obj)


def body_response(
    data: bytes, *, status: int = 200, content_type: str, headers: dict[str, str] | None = None
) -> Response:
    """A complete body (streamed by :func:`bridge.transport.lines.bounded` when it is large)."""
    return Response(data, status=status, content_type=content_type, headers=headers)


def json_response(
    obj: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return body_response(
        dumps(obj).encode(), status=status, content_type="application/json", headers=headers
    )


def html_response(page: Encoded, accept_encoding: str | None) -> Response:
    """An HTML page (UTF-8), gzip-coded when it has a gzip form and the client accepts it."""
    body, coding = page.for_client(accept_encoding)
    headers = dict(_HTML_HEADERS)
    if page.gzip is not None:
        headers["Vary"] = "Accept-Encoding"
    if coding is not None:
        headers["Content-Encoding"] = coding
    return body_response(body, content_type="text/html; charset=utf-8", headers=headers)


_HTML_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def stream_response(
    chunks: Iterable[bytes], *, content_type: str = "text/event-stream", status: int = 200
) -> Response:
    """A streamed response; each chunk is relayed by the daemon as soon as it is yielded.

    The SDK only streams when ``response.response`` is a generator, so any iterable is
    wrapped in one.
    """

    def generate() -> Iterator[bytes]:
        yield from chunks  # bridge.transport.lines.bounded splits them and guards their end

    return Response(generate(), status=status, content_type=content_type, headers=SSE_HEADERS)
