"""bridge.transport.request_head: a plain head parsed without h11 is what the SDK's parser makes
of it, and every other head is left to the SDK's parser (``None``).

Each case runs both: ``environ_of`` and dify_plugin 0.10.2's own ``deserialize_request`` (its
h11 parse included) on the same bytes. Where ``environ_of`` answers, the SDK's parser must
accept the request and build the same environ — same keys in the same order, same values, same
body; where the SDK's parser refuses a request, ``environ_of`` must decline it.
"""

import importlib.metadata
import inspect
from typing import Any

import pytest
from dify_plugin.core import plugin_executor
from dify_plugin.core.utils.http_parser import deserialize_request
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.transport import sdk
from bridge.transport.request_head import environ_of
from bridge.transport.sdk import endpoint as sdk_endpoint
from devkit import bench
from devkit.wire import daemon_request_bytes


def _plain(environ: dict[str, Any]) -> list[tuple[str, Any]]:
    """The environ as comparable items: the body's bytes for its stream, no back-reference."""
    out = []
    for key, value in environ.items():
        if key == "werkzeug.request":
            continue
        out.append((key, value.getvalue() if key == "wsgi.input" else value))
    return out


def _sdk(raw: bytes) -> list[tuple[str, Any]] | None:
    try:
        return _plain(deserialize_request(raw).environ)
    except Exception:  # any refusal of the SDK's parser
        return None


def _agrees(raw: bytes) -> dict[str, Any] | None:
    """``environ_of(raw)``, after checking it against the SDK's parser."""
    fast = environ_of(raw)
    if fast is not None:
        assert _sdk(raw) == _plain(fast), raw
    return fast


HEAD = b"GET /p HTTP/1.1\r\nHost: h\r\n"
KEY = {"Authorization": "Bearer k"}
JSON = {"Content-Type": "application/json", **KEY}
DAEMON_REQUESTS = [
    daemon_request_bytes("GET", "/"),
    daemon_request_bytes("GET", "/v1/parameters", headers=KEY),
    daemon_request_bytes("GET", "/v1/messages?conversation_id=c-1&limit=20&first_id=", headers=KEY),
    daemon_request_bytes("GET", "/webhook?hub.mode=subscribe&hub.challenge=9&hub.verify_token=t"),
    daemon_request_bytes("GET", "/caf%C3%A9/%E2%9C%93?q=caf%C3%A9+ok&x=%2F"),
    daemon_request_bytes("POST", "/v1/chat-messages", headers=JSON, body=b'{"query": "hi"}'),
    daemon_request_bytes("POST", "/webhook", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": "sha256=ab", "X-GitHub-Event":
        "push", "X-Forwarded-For": "203.0.113.9, 10.0.0.1", "Accept": "*/*"}, body=b"{}"),
    daemon_request_bytes("POST", "/webhook", body=b"a=1&b=%20", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": "a=1; b=2"}),
    daemon_request_bytes("OPTIONS", "/v1/chat-messages", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"}),
    daemon_request_bytes("PUT", "/x", headers={"X-Empty": "", "X-Tabs": "a\tb"}, body=b"\x00\xff"),
    daemon_request_bytes("POST", "/webhook", headers=KEY),  # empty: Transfer-Encoding: chunked
    HEAD + b"Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
    daemon_request_bytes("GET", "/", host="127.0.0.1:5002"),
    daemon_request_bytes("GET", "/", host="[::1]:8080"),
]  # fmt: skip


@pytest.mark.parametrize("raw", DAEMON_REQUESTS)
def test_the_daemons_requests_are_parsed_as_the_sdk_parses_them(raw):
    assert _agrees(raw) is not None


def test_every_benchmarked_route_takes_the_plain_path():
    for route in bench.routes():
        if route.prepare is None:
            assert _agrees(route.make(0)) is not None, route.name


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"GET / HTTP/1.1\r\nHost: h",  # no end of head
        b"GET / HTTP/1.1\nHost: h\n\n",  # LF lines: the SDK's second way
        b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
        b"GET /\r\nHost: h\r\n\r\n",
        b"GET  HTTP/1.1\r\nHost: h\r\n\r\n",  # empty target
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",  # not a token
        b"GET /\xc3( HTTP/1.1\r\nHost: h\r\n\r\n",  # not UTF-8
        b"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n",  # not printable
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        HEAD + b"Host: h\r\n\r\n",  # two
        HEAD + b"X_A: 1\r\n\r\n",  # the SDK refuses "_"
        HEAD + b"X-A : 1\r\n\r\n",
        HEAD + b" folded\r\n\r\n",  # obs-fold
        HEAD + b"X-A: 1\nX-B: 2\r\n\r\n",  # a bare LF inside a line
        HEAD + b"X-A: 1\r\r\n\r\n",  # a bare CR
        HEAD + b"X-A: caf\xc3\xa9\r\n\r\n",  # obs-text: the SDK decides (it accepts UTF-8)
        HEAD + b"X-A: \x01\r\n\r\n",
        HEAD + b"Content-Length: 3\r\n\r\nab",  # does not match the body
        HEAD + b"Content-Length: 2, 2\r\n\r\nab",  # h11 merges these
        HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nab",
        HEAD + b"Content-Length: +2\r\n\r\nab",
        HEAD + b"Content-Length: " + b"0" * 21 + b"\r\n\r\n",
        HEAD + b"Content-Type: a\r\nContent-Type: b\r\n\r\n",
        HEAD + b"Transfer-Encoding: gzip\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked, chunked\r\n\r\n",
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n",  # a port that is not a number
        b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
        HEAD + b"X-A: " + b"a" * (64 * 1024) + b"\r\n\r\n",  # over MAX_HEAD
    ],
)
def test_other_heads_are_left_to_the_sdks_parser(raw):
    assert environ_of(raw) is None


def test_what_the_sdk_refuses_stays_refused_through_the_seam():
    assert sdk.install()["plain_request_heads"]
    for raw in (HEAD + b"X_A: 1\r\n\r\n", HEAD + b"Content-Length: 3\r\n\r\nab"):
        with pytest.raises(sdk_endpoint.UnparseableRequest):
            plugin_executor.deserialize_request(raw)


def test_what_only_the_sdk_parses_is_still_parsed_through_the_seam():
    assert sdk.install()["plain_request_heads"]
    raw = HEAD + b"X-A: caf\xc3\xa9\r\n\r\n"
    assert environ_of(raw) is None
    assert plugin_executor.deserialize_request(raw).headers["X-A"] == "café"


def test_the_seam_builds_the_request_from_the_plain_environ():
    assert sdk.install()["plain_request_heads"]
    raw = DAEMON_REQUESTS[5]
    request = plugin_executor.deserialize_request(raw)
    assert request.get_data() == b'{"query": "hi"}'
    assert request.headers["Authorization"] == "Bearer k"
    assert _plain(request.environ) == _sdk(raw)


def test_the_seam_is_kept_to_the_parser_it_was_verified_on():
    sdk.install()
    original = inspect.unwrap(plugin_executor.deserialize_request)
    assert original is deserialize_request
    assert sdk_endpoint.plain_heads_verified(original)
    assert not sdk_endpoint.plain_heads_verified(original, "0.11.0")
    assert not sdk_endpoint.plain_heads_verified(environ_of)  # another source
    assert sdk_endpoint.install_plain_heads("0.11.0", "dify_plugin.core.utils.http_parser") is False


def test_the_h11_it_was_verified_on(monkeypatch):
    assert sdk_endpoint.plain_heads_verified(deserialize_request)
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "0.17.0" if name == "h11" else real(name)
    )
    assert not sdk_endpoint.plain_heads_verified(deserialize_request)


# -- generated heads --------------------------------------------------------------------------

_NAMES = st.sampled_from([
    b"Host", b"host", b"Content-Length", b"Content-Type", b"Transfer-Encoding", b"X-A", b"x-a",
    b"Authorization", b"X_A", b"X-A ", b" X-A", b"", b"X:A", b"X-\xc3\xa9", b"Accept",
])  # fmt: skip
_VALUE_BYTES = st.sampled_from(
    [b"a", b"1", b"0", b" ", b"\t", b",", b":", b"_", b"\r", b"\n", b"\x00", b"\x01", b"\x7f",
     b"\xc3\xa9", b"\xff", b"[", b"]", b"%", b"/", b"chunked", b"2"]
)  # fmt: skip
_VALUES = st.lists(_VALUE_BYTES, max_size=6).map(b"".join)
_TARGET_BYTES = st.sampled_from(
    [b"/", b"a", b"%2F", b"%", b"?", b"=", b"&", b"#", b" ", b"\xc3\xa9", b"\xff", b"\x7f",
     b"\t", b"~", b"+", b"%C3%A9", b"\r", b"\n"]
)  # fmt: skip
_TARGETS = st.lists(_TARGET_BYTES, max_size=8).map(b"".join)
_METHODS = st.sampled_from([b"GET", b"POST", b"GET", b"POST", b"M-SEARCH", b"G_T", b"", b"G T"])
_VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"http/1.1"])
_BODIES = st.sampled_from([b"", b"ab", b"0\r\n\r\n", b'{"a": 1}', b"\r\n\r\n"])


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(
    _METHODS,
    _TARGETS,
    _VERSIONS,
    st.lists(st.tuples(_NAMES, _VALUES), max_size=5),
    st.integers(0, 5),
    _BODIES,
)
def test_generated_heads_are_the_sdks_or_left_to_it(method, target, version, headers, at, body):
    """Mostly near-plain heads (one ``Host`` among the others) with odd names, values and
    bytes mixed in: wherever ``environ_of`` answers, the SDK's parser agrees."""
    headers.insert(min(at, len(headers)), (b"Host", b"h"))
    lines = [method + b" /" + target + b" " + version, *(n + b":" + v for n, v in headers)]
    _agrees(b"\r\n".join(lines) + b"\r\n\r\n" + body)


_TOKEN = st.text("abcXYZ019-!#$%&'*+.^`|~", min_size=1, max_size=12)
_PLAIN_VALUE = st.text("abc XYZ 019\t-_.:;,/\"'()[]{}<>=?@!#$%&*+", max_size=20)
_PLAIN_TARGET = st.text("abc019-._~/%?&=+:@!$'()*,;[]#", max_size=30).map(lambda t: "/" + t)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
    _PLAIN_TARGET,
    st.lists(st.tuples(_TOKEN, _PLAIN_VALUE), max_size=8),
    st.binary(max_size=40),
    st.sampled_from(["dify.example.com", "127.0.0.1:5002", "[::1]:80", "Example.COM"]),
)
def test_plain_heads_take_the_plain_path(method, target, headers, body, host):
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    special = {"host", "content-length", "content-type", "transfer-encoding"}
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in special]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    raw = "\r\n".join(lines).encode() + b"\r\n\r\n" + body
    assert _agrees(raw) is not None, raw
