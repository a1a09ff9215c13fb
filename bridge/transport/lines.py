"""The daemon's 5 MiB stdout line: nothing the plugin writes may come near it (SPEC §9.1).

The daemon reads plugin stdout with a line scanner capped at 5 MiB and kills the plugin on
overflow (protocol.md §4.5), and the SDK writes every message as one JSON line: each body
chunk hex-encoded (twice its size), a non-streamed body whole, an app invocation with its
query and inputs. So:

- :func:`bounded` is applied to every response (by :mod:`bridge.adapter`): chunks of a
  streamed body are split to at most ``MAX_CHUNK`` (256 KiB, a ~512 KiB line), and a
  non-streamed body over ``STREAM_THRESHOLD`` is streamed in such chunks (its
  ``Content-Length`` kept). SSE frames may span chunks; the client sees the same bytes.
- :func:`check_invocation` refuses with ``413`` an app invocation whose line — measured as
  the SDK serialises it — would not fit under the limit with ``MARGIN`` to spare.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any

import pydantic_core
from werkzeug import Response

from bridge.errors import invalid_param, payload_too_large
from bridge.transport.responses import daemon_safe

MAX_LINE = 5 * 1024 * 1024  # the daemon's PLUGIN_RUNTIME_MAX_BUFFER_SIZE, newline included
MAX_CHUNK = 256 * 1024  # raw bytes per yielded chunk: a line of ~512 KiB once hex-encoded
STREAM_THRESHOLD = 1024 * 1024  # non-streamed bodies above this are streamed (SPEC: > 2 MB)
MARGIN = 64 * 1024  # room left for what the estimate cannot know (longer session ids)

# The SDK's invoke message (``ResponseWriter.session_message`` of ``stream_invoke_object``)
# around the request object; ids as the daemon (uuid4) and the SDK (uuid4 hex) make them.
_SESSION_ID = "00000000-0000-4000-8000-000000000000"
_REQUEST_ID = "0" * 32
_ENVELOPE = (
    f'{{"event":"session","session_id":"{_SESSION_ID}","data":{{"type":"invoke","data":'
    f'{{"type":"app","backwards_request_id":"{_REQUEST_ID}","request":'
)
_ENVELOPE_BYTES = len(_ENVELOPE.encode()) + len("}}}") + len("\n")


def app_request(
    app_id: str,
    query: str,
    inputs: Mapping[str, Any],
    *,
    conversation_id: str | None = None,
    user: str | None = None,
    response_mode: str = "streaming",
) -> dict[str, Any]:
    """The request object the SDK's app invocations send (``invocations/app``)."""
    return {
        "app_id": app_id,
        "query": query,
        "inputs": inputs,
        "response_mode": response_mode,
        "conversation_id": conversation_id,
        "user": user,
    }


def invocation_line_size(request: Mapping[str, Any], *, session_id: str = _SESSION_ID) -> int:
    """Bytes of the stdout line (newline included) the SDK writes to invoke ``request``.

    pydantic serialises it (compact, UTF-8, inf/NaN as ``null``), as ``model_dump_json``
    does; a test pins the result to the SDK's own line.
    """
    body = pydantic_core.to_json(request, inf_nan_mode="null")
    return _ENVELOPE_BYTES + len(body) + len(session_id) - len(_SESSION_ID)


def check_invocation(request: Mapping[str, Any]) -> None:
    """Refuse (413) an invocation whose line would not fit under the daemon's limit."""
    try:
        size = invocation_line_size(request)
    except pydantic_core.PydanticSerializationError:
        raise invalid_param("query or inputs contain text that cannot be encoded") from None
    if size > MAX_LINE - MARGIN:
        limit_mb = (MAX_LINE - MARGIN) / 1_000_000
        raise payload_too_large(
            f"query and inputs are too large to pass to the app: {size} bytes once encoded, "
            f"the limit is {limit_mb:.1f} MB"
        )


# -- responses ----------------------------------------------------------------------------


def split(chunks: Iterable[bytes | str], size: int = MAX_CHUNK) -> Generator[bytes, None, None]:
    """``chunks`` as bytes, each cut to at most ``size``; chunks already small pass as they are.

    Closing this generator closes the source (a client gone stops the app stream).
    """
    try:
        for chunk in chunks:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            if len(data) <= size:
                yield data
                continue
            for start in range(0, len(data), size):
                yield data[start : start + size]
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def bounded(response: Response) -> Response:
    """``response`` with no chunk over ``MAX_CHUNK`` and no whole body over the threshold.

    The SDK streams only when ``response.response`` is a generator and sends any other body
    as one line, so a large one becomes a generator here (werkzeug's ``Content-Length``
    stays: the body is the same). Streamed bodies end through
    :func:`bridge.transport.responses.daemon_safe`, so the daemon relays all their chunks.
    """
    body = response.response
    if isinstance(body, Generator):
        response.response = daemon_safe(split(body))
    elif isinstance(body, bytes | bytearray | str):
        if _size(body) > STREAM_THRESHOLD:
            response.response = daemon_safe(split([body]))
    elif isinstance(body, list | tuple):
        if sum(_size(chunk) for chunk in body) > STREAM_THRESHOLD:
            response.response = daemon_safe(split(body))
    elif isinstance(body, Iterable):  # any other iterable: its size is unknown until read
        response.response = daemon_safe(split(body))
    return response


def _size(chunk: bytes | bytearray | str) -> int:
    return len(chunk.encode()) if isinstance(chunk, str) else len(chunk)
