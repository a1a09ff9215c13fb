"""The end grace that keeps Dify's daemon from cutting fast streams (docs/real-daemon.md)."""

import pytest

from bridge.transport import responses


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", 0.05), ("0", 0.0), ("20", 0.02), ("nonsense", 0.05), ("-5", 0.05), ("5000", 0.05)],
)
def test_grace_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("APP_BRIDGE_END_GRACE_MS", raw)
    assert responses._grace_from_environment() == pytest.approx(expected)


def test_a_body_of_several_chunks_ends_no_sooner_than_the_grace(monkeypatch):
    slept = []
    monkeypatch.setattr(responses.time, "sleep", slept.append)
    assert list(responses.daemon_safe(iter([b"a", b"b"]), grace=0.05)) == [b"a", b"b"]
    assert len(slept) == 1 and 0 < slept[0] <= 0.05
    slept.clear()
    assert list(responses.daemon_safe(iter([b"only"]), grace=0.05)) == [b"only"]
    assert slept == []  # one chunk: nothing for the daemon to drop
