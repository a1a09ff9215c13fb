"""werkzeug responses in the shapes the daemon relays faithfully.

Bodies are built whole here; :func:`bridge.lines.bounded` (applied by the adapter to every
response) streams large ones and splits large chunks, so no stdout line nears the daemon's
5 MiB limit (protocol.md §4.5).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from werkzeug import Response

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def dumps(obj: object) -> str:
    """JSON text as Dify writes it (``json.dumps`` defaults: ASCII, ``", "`` separators)."""
    return json.dumps(obj)


def body_response(
    data: bytes, *, status: int = 200, content_type: str, headers: dict[str, str] | None = None
) -> Response:
    """A complete body (streamed by :func:`bridge.lines.bounded` when it is large)."""
    return Response(data, status=status, content_type=content_type, headers=headers)


def json_response(
    obj: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return body_response(
        dumps(obj).encode(), status=status, content_type="application/json", headers=headers
    )


def html_response(text: str, *, status: int = 200) -> Response:
    return body_response(
        text.encode(),
        status=status,
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def stream_response(
    chunks: Iterable[bytes], *, content_type: str = "text/event-stream", status: int = 200
) -> Response:
    """A streamed response; each chunk is relayed by the daemon as soon as it is yielded.

    The SDK only streams when ``response.response`` is a generator, so any iterable is
    wrapped in one.
    """

    def generate() -> Iterator[bytes]:
        yield from chunks

    return Response(generate(), status=status, content_type=content_type, headers=SSE_HEADERS)
