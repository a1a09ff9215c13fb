"""Bytes and messages exactly as Dify's plugin daemon produces them.

- :func:`daemon_request_bytes` re-creates ``copyRequest`` + Go's ``Request.Write``
  (protocol.md §4.2): Go request line, ``Host``/``User-Agent``/framing first, remaining
  headers canonicalised and sorted, query re-encoded with sorted keys, forwarding headers
  stripped, ``Dify-Hook-Id``/``Dify-Hook-Url`` added, an empty POST/PUT body sent as
  ``Transfer-Encoding: chunked`` ``0\\r\\n\\r\\n``, and the body cut at 10 MiB.
- :func:`endpoint_request_message` is the JSON line the daemon writes to the plugin's stdin
  (§4.3), key order as Go marshals it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote_plus

BODY_LIMIT = 10 * 1024 * 1024
GO_USER_AGENT = "Go-http-client/1.1"
STRIPPED_HEADERS = frozenset(
    {
        "X-Forwarded-For",
        "X-Real-Ip",
        "X-Forwarded",
        "X-Original-Forwarded-For",
        "X-Original-Url",
        "X-Original-Host",
    }
)
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_USUALLY_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})

HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]]


def canonical_header_key(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``; names with non-token bytes stay as they are."""
    if not name or any(ch not in _TOKEN_CHARS for ch in name):
        return name
    out, upper = [], True
    for ch in name:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


def go_query_encode(raw_query: str) -> str:
    """``url.ParseQuery(raw).Encode()``: keys sorted, values kept in order, re-escaped."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return "&".join(
        f"{quote_plus(key, safe='')}={quote_plus(value, safe='')}"
        for key in sorted(grouped)
        for value in grouped[key]
    )


def _header_list(headers: HeaderItems | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), str(v)) for k, v in items]


def daemon_request_bytes(
    method: str,
    target: str,
    *,
    headers: HeaderItems | None = None,
    body: bytes = b"",
    hook_id: str = "hook0000000000ab",
    host: str = "dify.example.com",
    scheme: str = "https",
) -> bytes:
    """The raw HTTP/1.1 request the plugin receives for ``METHOD /e/<hook_id><target>``.

    ``target`` is the caller's path and query *after* ``/e/<hook_id>`` (e.g. ``/v1/x?a=1``).
    ``headers`` are what reached the daemon — add ``Dify-Hook-Url`` yourself to emulate
    nginx, or leave it out and the daemon's fallback is used.
    """
    method = method.upper()
    path, _, raw_query = target.partition("?")
    path = path or "/"
    body = body[:BODY_LIMIT]

    grouped: dict[str, list[str]] = {}
    for name, value in _header_list(headers):
        grouped.setdefault(canonical_header_key(name), []).append(value)
    original_host = grouped.get("X-Original-Host")
    request_host = (original_host or grouped.get("Host") or [host])[0]
    for name in (*STRIPPED_HEADERS, "Host", "Content-Length", "Transfer-Encoding", "Trailer"):
        grouped.pop(name, None)
    user_agent = (grouped.pop("User-Agent", None) or [GO_USER_AGENT])[0]
    grouped["Dify-Hook-Id"] = [hook_id]
    grouped.setdefault("Dify-Hook-Url", [f"{scheme}://{request_host}/e/{hook_id}{path}"])

    query = go_query_encode(raw_query)
    lines = [f"{method} {path}{'?' + query if query else ''} HTTP/1.1", f"Host: {request_host}"]
    if user_agent:
        lines.append(f"User-Agent: {user_agent}")
    payload = body
    if body:
        lines.append(f"Content-Length: {len(body)}")
    elif method not in _USUALLY_BODYLESS:
        lines.append("Transfer-Encoding: chunked")
        payload = b"0\r\n\r\n"
    for name in sorted(grouped):
        lines.extend(f"{name}: {value}" for value in grouped[name])
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + payload


def endpoint_request_message(
    raw_request: bytes,
    settings: Mapping[str, object],
    *,
    endpoint_id: str,
    session_id: str | None = None,
) -> dict:
    """The ``invoke_endpoint`` request message, fields in the order Go marshals them."""
    return {
        "session_id": session_id or str(uuid.uuid4()),
        "conversation_id": None,
        "message_id": None,
        "app_id": None,
        "endpoint_id": endpoint_id,
        "context": None,
        "event": "request",
        "data": {
            "action": "invoke_endpoint",
            "raw_http_request": raw_request.hex(),
            "settings": dict(settings),
            "type": "endpoint",
            "user_id": "",
        },
    }


def backwards_response_message(
    request_message: Mapping, backwards_request_id: str, event: str, message: str, data: object
) -> dict:
    """A ``backwards_response`` line answering one of the plugin's invocations (§5.1)."""
    return {
        "session_id": request_message["session_id"],
        "conversation_id": None,
        "message_id": None,
        "app_id": None,
        "endpoint_id": request_message["endpoint_id"],
        "context": None,
        "event": "backwards_response",
        "data": {
            "backwards_request_id": backwards_request_id,
            "event": event,
            "message": message,
            "data": data,
        },
    }


def encode_line(message: Mapping) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


DAEMON_ERROR_TYPES = {
    -400: "PluginDaemonBadRequestError",
    -404: "PluginNotFoundError",
    -500: "PluginDaemonInternalServerError",
}


def daemon_error_body(code: int, message: str) -> bytes:
    """The daemon's own error JSON (``exception.…Error(err).ToResponse()``), compact as Go
    writes it — e.g. ``killed by timeout`` (-500) or ``endpoint not found`` (-400), as seen
    on the real daemon (docs/real-daemon.md)."""
    inner = {"message": message, "error_type": DAEMON_ERROR_TYPES[code], "args": None}
    body = {"code": code, "message": json.dumps(inner, separators=(",", ":")), "data": None}
    return json.dumps(body, separators=(",", ":")).encode()
