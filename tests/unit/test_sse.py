import time

import pytest

from bridge.transport.sse import (
    PING,
    comment_frame,
    data_frame,
    dify_frame,
    event_frame,
    orjson_float,
    with_keepalive,
)


def test_frames():
    assert data_frame({"event": "message", "answer": "é"}) == (
        'data: {"event":"message","answer":"é"}\n\n'.encode()
    )
    assert event_frame("ping") == PING == b"event: ping\n\n"
    assert comment_frame("keepalive") == b": keepalive\n\n"


# what orjson 3.11.6 (Dify 1.15's lock) writes, next to what json.dumps writes
ORJSON_FLOATS = [
    (1.2345678e-05, "0.000012345678"),  # json: 1.2345678e-05
    (1e-05, "0.00001"),
    (-1.2e-05, "-0.000012"),
    (9.99e-06, "9.99e-6"),
    (1e-07, "1e-7"),
    (1.234e-100, "1.234e-100"),
    (5e-324, "5e-324"),
    (1e16, "1e16"),  # json: 1e+16
    (1.5e16, "1.5e16"),
    (2.0**70, "1.1805916207174113e21"),
    (1e15, "1000000000000000.0"),  # below the exponents: the same as json
    (0.0001, "0.0001"),
    (0.42, "0.42"),
    (-0.0, "-0.0"),
]


@pytest.mark.parametrize(("value", "text"), ORJSON_FLOATS)
def test_floats_as_orjson_writes_them(value, text):
    assert orjson_float(value) == text
    assert dify_frame({"x": [value]}) == f'data: {{"x":[{text}]}}\n\n'.encode()


def test_dify_frames_are_data_frames_but_for_exponent_floats():
    event = {"event": "node_finished", "data": {"elapsed_time": 1.5e-05, "n": 3, "t": 0.25}}
    assert (
        dify_frame(event)
        == b'data: {"event":"node_finished","data":{"elapsed_time":0.000015,"n":3,"t":0.25}}\n\n'
    )
    for plain in ({"text": "re-enter 1e-05 e+1", "x": 1.5}, {"event": "message", "answer": "é"}):
        assert dify_frame(plain) == data_frame(plain)  # strings are never touched


def slow(items, pause):
    for item in items:
        time.sleep(pause)
        yield item


def test_keepalive_fills_silences_and_keeps_order():
    out = list(with_keepalive(slow(["a", "b"], 0.25), 0.1, "."))
    assert [x for x in out if x != "."] == ["a", "b"]
    assert out.count(".") >= 2  # at least one keep-alive before each slow item
    assert out[-1] == "b"


def test_no_keepalive_when_items_flow():
    assert list(with_keepalive(iter(range(5)), 1.0, -1)) == [0, 1, 2, 3, 4]


def test_items_are_yielded_as_they_arrive():
    start = time.monotonic()
    stream = with_keepalive(slow(["first", "second"], 0.2), 5.0, None)
    assert next(stream) == "first"
    assert time.monotonic() - start < 0.35  # not held back until "second" exists
    stream.close()


def test_source_errors_reach_the_consumer():
    def broken():
        yield 1
        raise ValueError("boom")

    stream = with_keepalive(broken(), 1.0, None)
    assert next(stream) == 1
    with pytest.raises(ValueError, match="boom"):
        next(stream)


class Killed(BaseException):
    """Stands in for GreenletExit / gevent.Timeout."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_killed_source_reaches_the_consumer_as_a_plain_exception():
    def killed():
        yield 1
        raise Killed

    stream = with_keepalive(killed(), 1.0, None)
    assert next(stream) == 1
    with pytest.raises(RuntimeError, match="stream source stopped"):
        next(stream)


def test_the_first_item_is_taken_before_the_source_is_asked_for_more():
    """Time to first byte (issue #14): under the SDK's gevent patching (as the plugin runs)
    the helper hands the first item over before it goes on, so the first chunk is not held
    back while the source's next items are produced."""
    from gevent import monkey

    assert monkey.is_module_patched("threading")  # the SDK's import patched this process
    taken: list[str] = []
    taken_when_asked: list[list[str]] = []

    def source():
        yield "first"
        taken_when_asked.append(list(taken))
        yield "second"

    for item in with_keepalive(source(), 5.0, None):
        taken.append(item)
    assert taken == ["first", "second"]
    assert taken_when_asked == [["first"]]
