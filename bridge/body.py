"""Request bodies: JSON objects with the right status for each way they can be wrong."""

from __future__ import annotations

import json
from typing import Any

from bridge.errors import invalid_param, payload_too_large, unsupported_media_type

BODY_LIMIT = 10 * 1024 * 1024  # the daemon cuts bodies here, silently
EMPTY_CHUNKED = b"0\r\n\r\n"  # an empty POST as the daemon forwards it (protocol.md §4.2)


def raw_body(data: bytes) -> bytes:
    """The body as the caller sent it: the daemon's chunked empty body is empty."""
    return b"" if data == EMPTY_CHUNKED else data


def json_object(data: bytes, mimetype: str) -> dict[str, Any]:
    """Parse a JSON object body (415 wrong type, 413 cut by the daemon, 400 malformed)."""
    data = raw_body(data)
    if len(data) >= BODY_LIMIT:
        raise payload_too_large("Request body exceeds Dify's 10 MiB limit for plugin endpoints.")
    if not data:
        raise invalid_param("Request body must be a JSON object.")
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise unsupported_media_type("Content-Type must be application/json.")
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        raise invalid_param("Request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise invalid_param("Request body must be a JSON object.")
    return parsed
