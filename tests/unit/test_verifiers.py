"""Webhook signature schemes, checked against requests signed the providers' way.

Where a provider ships a library it signs the requests (standardwebhooks, stripe, slack_sdk,
PyNaCl); otherwise stdlib HMAC does, following the provider's documentation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import stripe
from nacl.signing import SigningKey
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook

from bridge.verifiers import (
    SCHEMES,
    Secrets,
    SignedRequest,
    VerificationFailed,
    delivery_id,
    verify,
)

NOW = int(time.time())  # real time: the standardwebhooks library reads the clock itself
BODY = b'{"id": "evt_123", "event_id": "Ev01", "update_id": 7, "text": "h\xc3\xa9llo"}'
SECRET = "s3cret-value-4821"
OTHER = "another-secret-9910"
WH_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()
WH_OTHER = "whsec_" + base64.b64encode(b"some-other-key-of-thirty-two-b!!").decode()
DISCORD_KEY = SigningKey.generate()
DISCORD_PUBLIC = DISCORD_KEY.verify_key.encode().hex()
DISCORD_OTHER = SigningKey.generate().verify_key.encode().hex()
SIG_HEADER = "X-Signature"

Headers = dict[str, str]


def request(
    headers: Headers, body: bytes = BODY, *, now: float = NOW, query: Headers | None = None
) -> SignedRequest:
    """A request as the webhook route builds it: lower-case header names."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return SignedRequest("POST", lowered, body, query or {}, now)


def hex_hmac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def b64_hmac(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


# --- signers: (body, timestamp) -> headers -------------------------------------------------


def sign_slack(body: bytes, ts: int) -> Headers:
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=str(ts), body=body)
    return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(ts)}


def sign_stripe(body: bytes, ts: int) -> Headers:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, ts)
    return {"Stripe-Signature": header}


def sign_standard(body: bytes, ts: int, prefix: str = "webhook") -> Headers:
    when = datetime.fromtimestamp(ts, tz=UTC)
    signature = Webhook(WH_SECRET).sign("msg_2Lx", when, body.decode())
    return {
        f"{prefix}-id": "msg_2Lx",
        f"{prefix}-timestamp": str(ts),
        f"{prefix}-signature": signature,
    }


def sign_discord(body: bytes, ts: int) -> Headers:
    signed = DISCORD_KEY.sign(str(ts).encode() + body)
    return {"X-Signature-Ed25519": signed.signature.hex(), "X-Signature-Timestamp": str(ts)}


@dataclass(frozen=True)
class Case:
    name: str
    sign: Callable[[bytes, int], Headers]
    secret: str = SECRET
    wrong: str = OTHER
    signs_body: bool = True
    timestamped: bool = False
    malformed: tuple[Headers, ...] = ()
    signature_header: str = ""
    query: Headers = field(default_factory=dict)

    def secrets(self, secret: str | None = None) -> Secrets:
        return Secrets(self.secret if secret is None else secret, self.signature_header)

    def __str__(self) -> str:
        return self.name


NOT_HEX = "z" * 64
ACCENTED = "é" * 64
CASES = [
    Case(
        "api_key",
        lambda body, ts: {"Authorization": f"Bearer {SECRET}"},
        signs_body=False,
        malformed=({"Authorization": "Bearer é"}, {"Authorization": "Basic Zm9vOmJhcg=="}),
    ),
    Case(
        "hmac_sha256",
        lambda body, ts: {SIG_HEADER: "sha256=" + hex_hmac(SECRET, body)},
        signature_header=SIG_HEADER,
        malformed=(
            {SIG_HEADER: "garbage"},
            {SIG_HEADER: "sha256=" + NOT_HEX},
            {SIG_HEADER: ACCENTED},
            {SIG_HEADER: "sha256=abcd"},
        ),
    ),
    Case(
        "github",
        lambda body, ts: {"X-Hub-Signature-256": "sha256=" + hex_hmac(SECRET, body)},
        malformed=(
            {"X-Hub-Signature-256": "garbage"},
            {"X-Hub-Signature-256": "sha256=" + NOT_HEX},
            {"X-Hub-Signature-256": "sha1=" + "a" * 40},
            {"X-Hub-Signature-256": "sha256=" + ACCENTED},
            {"X-Hub-Signature-256": hex_hmac(SECRET, BODY)},  # prefix missing
        ),
    ),
    Case(
        "gitlab",
        lambda body, ts: {"X-Gitlab-Token": SECRET},
        signs_body=False,
        malformed=({"X-Gitlab-Token": "é"}, {"X-Gitlab-Token": SECRET + "x"}),
    ),
    Case(
        "slack",
        sign_slack,
        timestamped=True,
        malformed=(
            {"X-Slack-Request-Timestamp": "abc"},
            {"X-Slack-Request-Timestamp": "１２３"},  # non-ASCII digits
            {"X-Slack-Request-Timestamp": f"{NOW}.5"},
            {"X-Slack-Signature": "garbage"},
            {"X-Slack-Signature": "v1=" + "a" * 64},
            {"X-Slack-Signature": "v0=" + NOT_HEX},
        ),
    ),
    Case(
        "stripe",
        sign_stripe,
        timestamped=True,
        malformed=(
            {"Stripe-Signature": "garbage"},
            {"Stripe-Signature": f"t=abc,v1={'a' * 64}"},
            {"Stripe-Signature": f"v1={'a' * 64}"},
            {"Stripe-Signature": f"t={NOW}"},
            {"Stripe-Signature": f"t={NOW},v0={'a' * 64}"},
            {"Stripe-Signature": ",,,"},
            {"Stripe-Signature": f"t={NOW},v1={ACCENTED}"},
        ),
    ),
    Case(
        "standard_webhooks",
        sign_standard,
        secret=WH_SECRET,
        wrong=WH_OTHER,
        timestamped=True,
        malformed=(
            {"webhook-signature": "garbage"},
            {"webhook-signature": "v1,%%%notbase64"},
            {"webhook-signature": "v2,abc v1"},
            {"webhook-signature": "v1a,c2lnbmF0dXJl"},
            {"webhook-timestamp": "abc"},
            {"webhook-timestamp": "1e9"},
        ),
    ),
    Case(
        "discord",
        sign_discord,
        secret=DISCORD_PUBLIC,
        wrong=DISCORD_OTHER,
        timestamped=True,
        malformed=(
            {"X-Signature-Ed25519": "garbage"},
            {"X-Signature-Ed25519": "ab" * 10},
            {"X-Signature-Ed25519": "zz" * 64},
            {"X-Signature-Timestamp": "abc"},
        ),
    ),
    Case(
        "shopify",
        lambda body, ts: {"X-Shopify-Hmac-Sha256": b64_hmac(SECRET, body)},
        malformed=(
            {"X-Shopify-Hmac-Sha256": "not base64!!"},
            {"X-Shopify-Hmac-Sha256": "abc"},
            {"X-Shopify-Hmac-Sha256": "é"},
            {"X-Shopify-Hmac-Sha256": hex_hmac(SECRET, BODY)},  # hex where base64 is due
        ),
    ),
    Case(
        "telegram",
        lambda body, ts: {"X-Telegram-Bot-Api-Secret-Token": SECRET},
        signs_body=False,
        malformed=({"X-Telegram-Bot-Api-Secret-Token": "é"},),
    ),
    Case(
        "line",
        lambda body, ts: {"X-Line-Signature": b64_hmac(SECRET, body)},
        malformed=({"X-Line-Signature": "%%%"}, {"X-Line-Signature": "abc"}),
    ),
    Case(
        "meta",
        lambda body, ts: {"X-Hub-Signature-256": "sha256=" + hex_hmac(SECRET, body)},
        malformed=(
            {"X-Hub-Signature-256": "garbage"},
            {"X-Hub-Signature-256": "sha256=" + NOT_HEX},
        ),
    ),
]
TIMESTAMPED = [case for case in CASES if case.timestamped]
BODY_SIGNED = [case for case in CASES if case.signs_body]
MALFORMED = [(case, headers) for case in CASES for headers in case.malformed]


def fails(case: Case, req: SignedRequest, secret: str | None = None) -> str:
    """Assert both the scheme and the registry refuse ``req``; return the message."""
    secrets = case.secrets(secret)
    with pytest.raises(VerificationFailed) as direct:
        SCHEMES[case.name].verify(req, secrets)
    with pytest.raises(VerificationFailed) as wrapped:
        verify(case.name, req, secrets)
    message = str(wrapped.value)
    assert message == str(direct.value)
    for secret_value in (secrets.secret, SECRET, WH_SECRET.removeprefix("whsec_")):
        assert secret_value not in message
    for value in req.headers.values():
        if len(value) >= 16:  # signatures and tokens, never echoed
            assert value not in message
    return message


def test_registry_has_every_contract_scheme():
    contract = "api_key hmac_sha256 github gitlab slack stripe standard_webhooks discord shopify"
    assert set(SCHEMES) == {*contract.split(), "telegram", "line", "meta"}
    assert all(scheme.name == name for name, scheme in SCHEMES.items())


@pytest.mark.parametrize("case", CASES, ids=str)
def test_valid_request_passes(case):
    verify(case.name, request(case.sign(BODY, NOW)), case.secrets())


@pytest.mark.parametrize("case", BODY_SIGNED, ids=str)
def test_tampered_body_fails(case):
    headers = case.sign(BODY, NOW)
    assert "does not match" in fails(case, request(headers, BODY.replace(b"7", b"8")))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_wrong_secret_fails(case):
    assert "does not match" in fails(case, request(case.sign(BODY, NOW)), case.wrong)


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
@pytest.mark.parametrize("offset", [-301, 301, -100_000])
def test_stale_or_future_timestamp_fails(case, offset):
    message = fails(case, request(case.sign(BODY, NOW + offset)))
    assert message == "timestamp outside the 300 s window"


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
@pytest.mark.parametrize("offset", [-250, 250])
def test_timestamp_inside_window_passes(case, offset):
    now = int(time.time())  # not NOW: standardwebhooks checks against the real clock, and
    # the suite may have run for minutes since import
    verify(case.name, request(case.sign(BODY, now + offset), now=now), case.secrets())


@pytest.mark.parametrize("case", TIMESTAMPED, ids=str)
def test_window_uses_request_now(case):
    """``request.now`` is the clock: a fresh signature is stale when now is far ahead."""
    assert "window" in fails(case, request(case.sign(BODY, NOW), now=NOW + 3600))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_missing_header_fails(case):
    headers = case.sign(BODY, NOW)
    for name in headers:
        rest = {k: v for k, v in headers.items() if k != name}
        assert "missing" in fails(case, request(rest))


@pytest.mark.parametrize(("case", "override"), MALFORMED, ids=str)
def test_malformed_header_is_verification_failed(case, override):
    headers = {**case.sign(BODY, NOW), **override}
    fails(case, request(headers))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_empty_body(case):
    verify(case.name, request(case.sign(b"", NOW), b""), case.secrets())


TEXT_SIGNERS = {"slack", "stripe", "standard_webhooks"}  # their libraries sign str, not bytes


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in TEXT_SIGNERS], ids=str)
def test_binary_body(case):
    body = b"\xff\xfe\x00binary"
    verify(case.name, request(case.sign(body, NOW), body), case.secrets())


def test_standard_webhooks_binary_body_is_refused_not_crashed():
    """The library verifies text; a non-UTF-8 body is a 401, not a 500."""
    body = b"\xff\xfe\x00binary"
    key = base64.b64decode(WH_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b"msg_1." + str(NOW).encode() + b"." + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    fails(CASES[6], request(headers, body))


# --- scheme details ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Authorization": f"Bearer {SECRET}"}, {}),
        ({"Authorization": f"bearer   {SECRET} "}, {}),
        ({"X-API-Key": SECRET}, {}),
        ({"Authorization": "Basic Zm9v", "X-API-Key": SECRET}, {}),
        ({}, {"api_key": SECRET}),
        ({"Authorization": "Bearer wrong"}, {"api_key": SECRET}),
    ],
)
def test_api_key_forms(headers, query):
    verify("api_key", request(headers, query=query), Secrets(SECRET))


def test_api_key_wrong_query_key_fails():
    case = CASES[0]
    assert "does not match" in fails(case, request({}, query={"api_key": OTHER}))


@pytest.mark.parametrize(
    "value",
    [
        "sha256=" + hex_hmac(SECRET, BODY),
        hex_hmac(SECRET, BODY),
        "SHA256=" + hex_hmac(SECRET, BODY).upper(),
    ],
)
def test_hmac_sha256_prefix_and_case(value):
    verify("hmac_sha256", request({"X-Custom-Sig": value}), Secrets(SECRET, "X-Custom-Sig"))


def test_hmac_sha256_needs_a_configured_header():
    headers = {SIG_HEADER: hex_hmac(SECRET, BODY)}
    with pytest.raises(VerificationFailed, match="no webhook_signature_header configured"):
        verify("hmac_sha256", request(headers), Secrets(SECRET))


def test_slack_matches_slack_sdk_and_accepts_injected_clock():
    """A fixed clock far from real time works: the scheme only reads ``request.now``."""
    ts = 1_700_000_000
    headers = sign_slack(BODY, ts)
    verify("slack", request(headers, now=ts + 10), Secrets(SECRET))

    class Clock:
        def now(self) -> float:
            return ts + 10

    assert SignatureVerifier(SECRET, Clock()).is_valid_request(BODY, headers)


def test_stripe_any_v1_may_match_and_agrees_with_stripe_library():
    good = sign_stripe(BODY, NOW)["Stripe-Signature"]
    t, v1 = good.split(",")
    header = f"{t},v1={'0' * 64},{v1},v0={'1' * 64}"
    verify("stripe", request({"Stripe-Signature": header}), Secrets(SECRET))
    assert stripe.WebhookSignature.verify_header(BODY, header, SECRET, tolerance=300)


def test_stripe_messages():
    case = CASES[5]
    assert "malformed Stripe-Signature header" in fails(case, request({"Stripe-Signature": "x"}))
    assert "missing Stripe-Signature header" in fails(case, request({}))


@pytest.mark.parametrize("secret", [WH_SECRET, WH_SECRET.removeprefix("whsec_")])
@pytest.mark.parametrize("prefix", ["webhook", "svix"])
def test_standard_webhooks_secret_forms_and_svix_names(secret, prefix):
    verify("standard_webhooks", request(sign_standard(BODY, NOW, prefix)), Secrets(secret))


def test_standard_webhooks_several_signatures():
    headers = sign_standard(BODY, NOW)
    other = Webhook(WH_OTHER).sign("msg_2Lx", datetime.fromtimestamp(NOW, tz=UTC), BODY.decode())
    headers["webhook-signature"] = f"{other} {headers['webhook-signature']}"
    verify("standard_webhooks", request(headers), Secrets(WH_SECRET))


@pytest.mark.parametrize(("name", "secret"), [("standard_webhooks", "!!"), ("discord", "xyz")])
def test_unusable_secret_is_verification_failed(name, secret):
    case = next(case for case in CASES if case.name == name)
    fails(case, request(case.sign(BODY, NOW)), secret)


def test_discord_signature_from_another_key_fails():
    forged = SigningKey.generate().sign(str(NOW).encode() + BODY).signature.hex()
    headers = {"X-Signature-Ed25519": forged, "X-Signature-Timestamp": str(NOW)}
    assert "does not match" in fails(CASES[7], request(headers))


# --- registry ------------------------------------------------------------------------------


def test_unknown_scheme():
    with pytest.raises(VerificationFailed, match="unknown webhook_verification"):
        verify("twilio", request({}), Secrets(SECRET))


@pytest.mark.parametrize(
    ("name", "message"),
    [("api_key", "no api_key configured"), ("github", "no webhook_secret configured")],
)
@pytest.mark.parametrize("secret", ["", "  "])
def test_empty_secret_fails_closed(name, message, secret):
    case = next(case for case in CASES if case.name == name)
    with pytest.raises(VerificationFailed, match=message):
        verify(name, request(case.sign(BODY, NOW)), Secrets(secret))


class Exploding:
    name = "exploding"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        raise self.error

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        raise self.error


def test_scheme_exceptions_are_wrapped(monkeypatch):
    monkeypatch.setitem(SCHEMES, "exploding", Exploding(KeyError(f"leaked {SECRET}")))
    with pytest.raises(VerificationFailed) as caught:
        verify("exploding", request({}), Secrets(SECRET))
    assert str(caught.value) == "malformed signature headers"
    assert delivery_id("exploding", request({}), {}) is None


def test_verification_failed_message_is_kept(monkeypatch):
    monkeypatch.setitem(SCHEMES, "exploding", Exploding(VerificationFailed("specific reason")))
    with pytest.raises(VerificationFailed, match=r"^specific reason$"):
        verify("exploding", request({}), Secrets(SECRET))


# --- delivery ids --------------------------------------------------------------------------

LINE_EVENTS = {"events": [{"webhookEventId": "01B"}, {"webhookEventId": "01A"}, {"type": "x"}]}


@pytest.mark.parametrize(
    ("name", "headers", "payload", "expected"),
    [
        ("api_key", {"Idempotency-Key": "k1"}, None, "k1"),
        ("api_key", {}, {"id": "x"}, None),
        ("hmac_sha256", {"Idempotency-Key": "k2"}, None, "k2"),
        ("github", {"X-GitHub-Delivery": "72d3162e-cc78"}, {}, "72d3162e-cc78"),
        ("github", {}, {}, None),
        ("gitlab", {"X-Gitlab-Event-UUID": "u-1", "Idempotency-Key": "k"}, {}, "u-1"),
        ("gitlab", {"Idempotency-Key": "k"}, {}, "k"),
        ("gitlab", {}, {}, None),
        ("slack", {}, {"event_id": "Ev08MFMKH6"}, "Ev08MFMKH6"),
        ("slack", {}, {"type": "url_verification"}, None),
        ("slack", {}, None, None),
        ("stripe", {}, {"id": "evt_1", "object": "event"}, "evt_1"),
        ("stripe", {}, ["evt_1"], None),
        ("standard_webhooks", {"webhook-id": "msg_1"}, {}, "msg_1"),
        ("standard_webhooks", {"svix-id": "msg_2"}, {}, "msg_2"),
        ("discord", {}, {"id": "1234567890", "type": 2}, "1234567890"),
        ("discord", {}, {"type": 0, "event": {}}, None),
        ("shopify", {"X-Shopify-Webhook-Id": "b54557e4"}, {}, "b54557e4"),
        ("telegram", {}, {"update_id": 10000}, "10000"),
        ("telegram", {}, {"update_id": True}, None),
        ("line", {}, LINE_EVENTS, "01A,01B"),
        ("line", {}, {"destination": "U1", "events": []}, None),
        ("line", {}, {"events": "nope"}, None),
        ("meta", {"X-Hub-Signature-256": "sha256=00"}, {"entry": [{"id": "1"}]}, None),
        ("unknown", {"Idempotency-Key": "k"}, {}, None),
    ],
)
def test_delivery_id(name, headers, payload, expected):
    assert delivery_id(name, request(headers), payload) == expected
