"""``slack``: v0 request signing.

``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{raw body}">``
with the app's signing secret; the timestamp must be within 300 s of now (either side).
Delivery id: the Events API body's ``event_id`` (other payloads have none).
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    VerificationFailed,
    check_window,
    current_time,
    hmac_sha256,
    parse_hex_sha256,
    parse_timestamp,
    payload_field,
    require_header,
    same,
)

SIGNATURE = "X-Slack-Signature"
TIMESTAMP = "X-Slack-Request-Timestamp"


class Slack:
    name = "slack"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check freshness, then the v0 signature over timestamp and raw body."""
        signature = require_header(request, SIGNATURE)
        timestamp = require_header(request, TIMESTAMP)
        check_window(parse_timestamp(timestamp, f"{TIMESTAMP} header"), current_time(request))
        version, sep, digest = signature.partition("=")
        if not sep or version != "v0":
            raise VerificationFailed(f"malformed {SIGNATURE} header (expected v0=<hex>)")
        received = parse_hex_sha256(digest, f"{SIGNATURE} header")
        base = b"v0:" + timestamp.encode() + b":" + request.body
        if not same(hmac_sha256(secrets.secret, base), received):
            raise VerificationFailed("signature does not match")

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return payload_field(payload, "event_id")
