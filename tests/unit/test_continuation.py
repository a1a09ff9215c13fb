"""Continuation pieces without I/O: MAC, window, single use, gate; the two-way settings."""

import pytest

from bridge.config.settings import parse_settings
from bridge.protocols import continuation as c

BODY = b'{"v": 1}'


def test_mac_is_keyed_by_a_derived_key_never_the_api_key():
    key = c.derive_key("secret-key")
    assert len(key) == 32 and b"secret-key" not in key
    assert c.derive_key("secret-key") == key != c.derive_key("other-key")
    header = c.sign("secret-key", BODY, "n1", now=1000)
    assert "secret-key" not in header
    assert c.verify("secret-key", header, BODY, now=1010) == "n1"


@pytest.mark.parametrize(
    ("header_key", "body", "now"),
    [
        ("other-key", BODY, 1010),  # forged
        ("secret-key", b'{"v": 2}', 1010),  # tampered body
        ("secret-key", BODY, 1000 + c.WINDOW + 1),  # expired
        ("secret-key", BODY, 990),  # from the future
    ],
)
def test_refused(header_key, body, now):
    header = c.sign(header_key, BODY, "n1", now=1000)
    with pytest.raises(c.Refused):
        c.verify("secret-key", header, body, now=now)


@pytest.mark.parametrize("header", [None, "", "t=1", "t=x,n=a,v1=b", "n=a,v1=b"])
def test_malformed_headers_are_refused(header):
    with pytest.raises(c.Refused):
        c.verify("secret-key", header, BODY)


def test_ledger_single_use_and_cancel():
    ledger = c.Ledger()
    ledger.mint("a")
    assert ledger.claim("a") and not ledger.claim("a")  # single use
    assert not ledger.cancel("a")  # claimed: the continuation runs, no inline fallback
    ledger.mint("b")
    assert ledger.cancel("b") and not ledger.claim("b")  # cancelled: arrives too late
    assert not ledger.knows("z") and ledger.claim("z")  # another instance's nonce


def test_gate_bounds_concurrency():
    gate = c.Gate(2)
    assert gate.enter() and gate.enter() and not gate.enter()
    gate.leave()
    assert gate.enter()


def test_default_self_url_needs_server_port_and_hook():
    assert c.default_self_url("hook1", {"SERVER_PORT": "5002"}) == "http://127.0.0.1:5002/e/hook1"
    assert c.default_self_url("hook1", {}) == ""
    assert c.default_self_url("", {"SERVER_PORT": "5002"}) == ""


BASE = {"api_key": "k", "app": "a"}


def test_two_way_settings_defaults_and_problems():
    s = parse_settings(BASE)
    assert (s.webhook_reply, s.run_mode, s.deferred) == ("response", "auto", False)
    s = parse_settings({**BASE, "webhook_reply": " Slack ", "reply_token": "xoxb-1"})
    assert (s.webhook_reply, s.deferred, s.problems) == ("slack", True, ())
    assert not parse_settings({**BASE, "webhook_reply": "slack", "reply_token": "x",
                               "run_mode": "inline"}).deferred  # fmt: skip
    names = {p.name for p in parse_settings({**BASE, "webhook_reply": "callback"}).problems}
    assert names == {"reply_token", "reply_url"}
    names = {p.name for p in parse_settings({**BASE, "run_mode": "deferred"}).problems}
    assert names == {"run_mode"}
    names = {p.name for p in parse_settings({**BASE, "self_url": "ftp://x"}).problems}
    assert names == {"self_url"}
    assert {p.name for p in parse_settings({**BASE, "webhook_reply": "irc"}).problems} == {
        "webhook_reply"
    }
