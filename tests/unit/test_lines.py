"""bridge.transport.lines: chunk splitting, large bodies streamed, invocation size as the SDK writes it."""

import uuid
from collections.abc import Generator

import pytest
from dify_plugin.core.server.__base.response_writer import ResponseWriter
from werkzeug import Response

from bridge.errors import BridgeError
from bridge.transport.lines import (
    MARGIN,
    MAX_CHUNK,
    MAX_LINE,
    STREAM_THRESHOLD,
    app_request,
    bounded,
    check_invocation,
    invocation_line_size,
    split,
)
from devkit import daemon


def test_small_chunks_pass_unchanged_and_large_ones_are_cut():
    small = b"data: {}\n\n"
    big = bytes(range(256)) * (3 * MAX_CHUNK // 256 + 7)
    out = list(split(iter([small, big, "é" * MAX_CHUNK])))
    assert out[0] is small
    assert all(len(piece) <= MAX_CHUNK for piece in out)
    assert b"".join(out) == small + big + ("é" * MAX_CHUNK).encode()
    assert len(out) == 1 + 4 + 2


def test_closing_the_split_closes_the_source():
    closed = []

    def source():
        try:
            yield b"a" * (MAX_CHUNK * 2)
            yield b"b"
        finally:
            closed.append(True)

    pieces = split(source())
    next(pieces)
    pieces.close()
    assert closed == [True]


def test_streamed_responses_are_split():
    def frames():
        yield b"x" * (MAX_CHUNK + 1)

    response = bounded(Response(frames()))
    assert isinstance(response.response, Generator)  # the SDK still streams it
    assert [len(c) for c in response.response] == [MAX_CHUNK, 1]


def test_large_whole_bodies_are_streamed_with_their_length():
    body = b"{" + b"x" * (STREAM_THRESHOLD + 10) + b"}"
    response = bounded(Response(body, content_type="application/json"))
    assert isinstance(response.response, Generator)
    assert response.headers["Content-Length"] == str(len(body))
    pieces = list(response.response)
    assert b"".join(pieces) == body and max(map(len, pieces)) <= MAX_CHUNK


def test_small_whole_bodies_stay_one_message():
    response = bounded(Response(b"{}", content_type="application/json"))
    assert response.response == [b"{}"]


def sdk_invoke_line(request: dict, session_id: str) -> bytes:
    """The stdout line the SDK writes for an app invocation (``_full_duplex_backwards_invoke``)."""
    written: list[str] = []

    class Capture(ResponseWriter):
        def write(self, data: str) -> None:
            written.append(data)

        def done(self) -> None:
            pass

    writer = Capture()
    writer.session_message(
        session_id=session_id,
        data=writer.stream_invoke_object(
            data={"type": "app", "backwards_request_id": uuid.uuid4().hex, "request": request}
        ),
    )
    text = "".join(written)
    assert text.endswith("\n\n")  # one line, then an empty one
    return text[:-1].encode()


@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"doc": 'é😀\n\t"\\\x01\u2028', "n": [1, 2.5, None, True, {"deep": ["x"] * 3}]},
        {"nan": float("nan"), "inf": float("inf"), "big": 10**40, "neg": -0.0},
    ],
)
def test_invocation_size_is_the_sdks_own_line(inputs):
    session_id = str(uuid.uuid4())
    for query, conversation, user in (("hi", None, None), ("q" * 1000, str(uuid.uuid4()), "ü")):
        request = app_request("app-1", query, inputs, conversation_id=conversation, user=user)
        assert invocation_line_size(request, session_id=session_id) == len(
            sdk_invoke_line(request, session_id)
        )


def test_invocation_limit_and_margin():
    assert MAX_LINE == daemon.MAX_LINE  # the emulator and the plugin agree on the daemon's limit
    base = invocation_line_size(app_request("a", "", {}))
    limit = MAX_LINE - MARGIN
    check_invocation(app_request("a", "q" * (limit - base), {}))  # exactly at it
    with pytest.raises(BridgeError) as refused:
        check_invocation(app_request("a", "q" * (limit - base + 1), {}))
    assert (refused.value.status, refused.value.code) == (413, "payload_too_large")
    check_invocation(app_request("a", "", {"doc": "x" * 3_000_000}))  # 3 MB fits
    with pytest.raises(BridgeError):  # escapes count: 1 M control characters are 6 MB of JSON
        check_invocation(app_request("a", "\x01" * 1_000_000, {}))


def test_unencodable_text_is_invalid_param():
    with pytest.raises(BridgeError) as refused:
        check_invocation(app_request("a", "\ud800", {}))
    assert (refused.value.status, refused.value.code) == (400, "invalid_param")
    assert refused.value.message == "query or inputs contain text that cannot be encoded"
