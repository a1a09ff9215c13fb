"""Request bodies: JSON and text with the right status for each way they can be wrong.

Every JSON body the plugin reads passes through :func:`parse_json` (the JSON routes through
:func:`json_object`, webhooks and their form ``payload=`` field directly), so one set of
bounds holds on every route (SPEC §9.1, docs/limits.md):

- the bytes must be valid UTF-8 (no encoded surrogates either);
- nesting at most :data:`MAX_DEPTH` objects/arrays deep (Dify's SDK cannot serialise an app
  invocation much deeper, and deep values exhaust the interpreter's recursion);
- integers at most :data:`MAX_INT_DIGITS` digits (Python's own conversion limit), no
  ``NaN``/``Infinity`` and no float that overflows to infinity (Dify's JSON has neither);
- no lone surrogate (``"\\ud800"``) and no NUL (``"\\u0000"``) in any string or key: neither
  survives the trip to Dify (its database rejects NUL, its encoder lone surrogates).

Each is ``400 invalid_param`` with a message saying which bound was hit. The check walks the
parsed value without recursion; bodies over :data:`OFFLOAD_SIZE` are parsed and checked in
a native thread (:mod:`bridge.transport.cpu`) so a 10 MiB body holds up other requests as little as
the interpreter allows.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from gevent import monkey

from bridge.errors import (
    BridgeError,
    invalid_param,
    payload_too_large,
    unsupported_media_type,
)
from bridge.transport.cpu import offload

BODY_LIMIT = 10 * 1024 * 1024  # the daemon cuts bodies here, silently
EMPTY_CHUNKED = b"0\r\n\r\n"  # an empty POST as the daemon forwards it (protocol.md §4.2)
MAX_DEPTH = 64  # objects/arrays nested in one JSON value, the body itself counting as 1
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300  # Python's limit: 4300 by default
_INT_LIMIT = 10**MAX_INT_DIGITS
YIELD_EVERY = 20_000  # nodes checked between GIL releases
OFFLOAD_SIZE = 256 * 1024  # bodies above this are parsed and checked in a native thread

# A string can only hold NUL or a surrogate through an escape (raw control characters are
# invalid JSON; raw surrogates are invalid UTF-8), so bodies without one skip the string check.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotJson(BridgeError):
    """The text is not JSON at all (as opposed to JSON outside the bounds)."""


def raw_body(data: bytes) -> bytes:
    """The body as the caller sent it: the daemon's chunked empty body is empty."""
    return b"" if data == EMPTY_CHUNKED else data


_native_sleep = monkey.get_original("time", "sleep")


def pause() -> None:
    """Let the event loop's thread take the GIL now (long CPU steps run in a native thread,
    :mod:`bridge.transport.cpu`), rather than at the interpreter's next 5 ms switch."""
    _native_sleep(0)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


# json.loads with a keyword builds a JSONDecoder per call (~2 µs of a small body's ~4); one
# decoder, which keeps no state between calls, decodes alike
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_text(data: bytes, what: str = "Request body") -> str:
    """``data`` as UTF-8 text without NUL; 400 otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_param(f"{what} is not valid UTF-8.") from None
    check_text(text, what)
    return text


def check_text(text: str, what: str = "Request body") -> None:
    """400 when ``text`` holds a NUL or a lone surrogate (neither reaches Dify intact)."""
    if "\x00" in text:
        raise invalid_param(f"{what} contains a NUL character (\\u0000), which Dify cannot store.")
    if not text.isascii() and _SURROGATE.search(text):
        raise invalid_param(f"{what} contains a lone UTF-16 surrogate (such as \\ud800).")


def parse_json(data: bytes | str, what: str = "Request body") -> Any:
    """Parse JSON within the bounds above; :class:`BridgeError` 400 for anything else."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_param(f"{what} is not valid UTF-8.") from None
    else:
        text = data
    if len(text) > OFFLOAD_SIZE:  # parse and check off the event loop (bridge.transport.cpu)
        return offload(_parse_checked, text, what)
    return _parse_checked(text, what)


def _parse_checked(text: str, what: str) -> Any:
    try:
        parsed = _DECODER.decode(text)
    except RecursionError:
        raise _too_deep(what) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise invalid_param(
                f"{what} has a number longer than {MAX_INT_DIGITS} digits."
            ) from None
        raise NotJson(400, "invalid_param", f"{what} is not valid JSON.") from None
    check_value(parsed, what, strings=_SUSPECT_ESCAPE.search(text) is not None)
    return parsed


def check_value(value: Any, what: str = "Request body", *, strings: bool = True) -> None:
    """Depth (and, with ``strings``, NUL and lone surrogates) of a JSON-like value.

    Iterative, so no depth can exhaust the stack; releases the GIL every
    :data:`YIELD_EVERY` nodes.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen % YIELD_EVERY == 0:
            pause()
        if isinstance(node, dict):
            if depth >= MAX_DEPTH:
                raise _too_deep(what)
            for key, item in node.items():
                if strings:
                    check_text(key, what)
                _check_item(item, depth, stack, what, strings)
        elif isinstance(node, list):
            if depth >= MAX_DEPTH:
                raise _too_deep(what)
            for item in node:
                _check_item(item, depth, stack, what, strings)
        else:
            _check_item(node, -1, stack, what, strings)


def _check_item(item: Any, depth: int, stack: list, what: str, strings: bool) -> None:
    kind = type(item)
    if kind is dict or kind is list:
        if depth >= 0:
            stack.append((item, depth + 1))
    elif kind is str:
        if strings:
            check_text(item, what)
    elif kind is float and not math.isfinite(item):
        raise invalid_param(f"{what} has a number too large for JSON (it overflows to infinity).")
    elif kind is int and not -_INT_LIMIT < item < _INT_LIMIT:  # e.g. a mapping's sum()
        raise invalid_param(f"{what} has a number longer than {MAX_INT_DIGITS} digits.")


def _too_deep(what: str) -> BridgeError:
    return invalid_param(f"{what} is nested more than {MAX_DEPTH} levels deep.")


def json_object(data: bytes, mimetype: str) -> dict[str, Any]:
    """Parse a JSON object body (415 wrong type, 413 cut by the daemon, 400 malformed)."""
    data = raw_body(data)
    if len(data) >= BODY_LIMIT:
        raise payload_too_large("Request body exceeds Dify's 10 MiB limit for plugin endpoints.")
    if not data:
        raise invalid_param("Request body must be a JSON object.")
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise unsupported_media_type("Content-Type must be application/json.")
    parsed = parse_json(data)
    if not isinstance(parsed, dict):
        raise invalid_param("Request body must be a JSON object.")
    return parsed
