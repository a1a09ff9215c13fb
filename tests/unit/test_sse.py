import time

import pytest

from bridge.transport.sse import PING, comment_frame, data_frame, event_frame, with_keepalive


def test_frames():
    assert data_frame({"event": "message", "answer": "é"}) == (
        'data: {"event":"message","answer":"é"}\n\n'.encode()
    )
    assert event_frame("ping") == PING == b"event: ping\n\n"
    assert comment_frame("keepalive") == b": keepalive\n\n"


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
