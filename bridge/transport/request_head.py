"""The daemon's raw HTTP request → the WSGI environ the SDK builds, without h11, for plain heads.

dify_plugin 0.10.2 turns every endpoint request into a werkzeug ``Request`` with
``deserialize_request`` (``dify_plugin/core/utils/http_parser.py``): it splits the head off,
rebuilds it with a percent-encoded target, hands it to a fresh ``h11.Connection`` to validate
and parse, and builds the environ from h11's event. The h11 part is ~60 µs of the ~80–100 µs
a request costs there (issue 14) — on every request, before any endpoint runs.

:func:`environ_of` builds the same environ for the requests the daemon writes (protocol.md
§4.2) — HTTP/1.1, CRLF lines, one ``Host``, at most one ``Content-Type``, a ``Content-Length``
matching the body or an empty POST's ``Transfer-Encoding: chunked``, header names of token
characters without ``_``, values of printable ASCII — checking each the way h11 0.16 and the
SDK check it. Whatever else arrives (an ``_`` in a name, a duplicate, a folded line, another
coding, a byte outside printable ASCII, a length that does not match…) it declines with
``None``, and the SDK's own parser decides: it raises where it raises, and parses what only it
parses. So a head is either the SDK's result or the SDK's decision;
``tests/unit/test_request_head.py`` compares the two on the daemon's requests and on generated
ones. The seam is installed only on the SDK and h11 versions this was verified on
(:mod:`bridge.transport.sdk`).
"""

from __future__ import annotations

import re
from io import BytesIO
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

MAX_HEAD = 64 * 1024  # longer heads are left to the SDK
# h11's ``token``; for names without ``_`` (the SDK refuses it); values: printable ASCII
_METHOD = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_HEADER_LINE = re.compile(
    rb"([-!#$%&'*+.^`|~0-9a-zA-Z]+):[ \t]*((?:[\x21-\x7e](?:[\x21-\x7e \t]*[\x21-\x7e])?)?)[ \t]*"
)
_CONTENT_LENGTH = re.compile("[0-9]{1,20}")  # h11: digits, at most 20
_BODY_HEADERS = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}


def environ_of(raw: bytes) -> dict[str, Any] | None:
    """The environ ``deserialize_request(raw)`` builds, or None: not a plain head (see above)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator or len(head) > MAX_HEAD or b"\n" in head.replace(b"\r\n", b""):
        return None  # an LF outside CRLF: h11 would split lines where the SDK does not
    request_line, *header_lines = head.split(b"\r\n")
    start = _request_line(request_line)
    headers = _headers(header_lines, len(body))
    if start is None or headers is None:
        return None
    method, full_path = start
    host = next(value for name, value in headers if name == b"host")
    try:
        parsed_host = urlsplit(f"//{host}")
        server_port = str(80 if parsed_host.port is None else parsed_host.port)
    except ValueError:
        return None
    raw_path, _, query_string = full_path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": query_string,
        "SERVER_NAME": parsed_host.hostname or host,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.url_scheme": "http",
    }
    for name, value in headers:
        key = _BODY_HEADERS.get(name)
        environ[key or "HTTP_" + name.decode("ascii").upper().replace("-", "_")] = value
    if body and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _request_line(line: bytes) -> tuple[str, str] | None:
    """Method and target of an HTTP/1.1 request line, split as the SDK splits it."""
    method, space, remainder = line.partition(b" ")
    target, version_space, protocol = remainder.rpartition(b" ")
    if not (space and version_space and target) or protocol != b"HTTP/1.1":
        return None
    if _METHOD.fullmatch(method) is None:
        return None
    try:
        full_path = target.decode()
    except UnicodeDecodeError:
        return None
    return (method.decode("ascii"), full_path) if full_path.isprintable() else None


def _headers(lines: list[bytes], body_length: int) -> list[tuple[bytes, str]] | None:
    """Lower-cased names and values, or None unless every line is plain: one ``Host``, at most
    one ``Content-Type``, and one ``Content-Length`` (the body's) or ``Transfer-Encoding:
    chunked`` (left out, as the SDK leaves it out) or neither."""
    headers: list[tuple[bytes, str]] = []
    for line in lines:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        headers.append((match[1].lower(), match[2].decode("ascii")))
    names = [name for name, _ in headers]
    if names.count(b"host") != 1 or names.count(b"content-type") > 1:
        return None
    lengths = [value for name, value in headers if name == b"content-length"]
    codings = [value for name, value in headers if name == b"transfer-encoding"]
    if codings:  # the daemon's empty POST: the SDK keeps the chunked body as it is
        if lengths or len(codings) != 1 or codings[0].lower() != "chunked":
            return None
        return [header for header in headers if header[0] != b"transfer-encoding"]
    if not lengths:
        return headers
    plain = len(lengths) == 1 and _CONTENT_LENGTH.fullmatch(lengths[0]) is not None
    return headers if plain and int(lengths[0]) == body_length else None
