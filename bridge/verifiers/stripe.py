"""``stripe``: ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]``.

Each ``v1`` is the hex HMAC-SHA256 of ``"{t}.{raw body}"`` with the endpoint's signing
secret (``whsec_…``, used as is); any one may match (several appear while a secret is being
rolled). ``t`` must be within 300 s of now. Delivery id: the event ``id`` in the body.
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    VerificationFailed,
    check_window,
    current_time,
    hmac_sha256,
    parse_timestamp,
    payload_field,
    require_header,
    same,
)

HEADER = "Stripe-Signature"


class Stripe:
    name = "stripe"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check freshness, then that some ``v1`` signs ``t.body``."""
        timestamp, signatures = self._parse(require_header(request, HEADER))
        check_window(parse_timestamp(timestamp, f"{HEADER} timestamp"), current_time(request))
        expected = hmac_sha256(secrets.secret, timestamp.encode() + b"." + request.body).hex()
        matches = [same(expected, candidate.lower()) for candidate in signatures]
        if not any(matches):
            raise VerificationFailed("signature does not match")

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return payload_field(payload, "id")

    @staticmethod
    def _parse(header: str) -> tuple[str, list[str]]:
        """``(t, [v1, …])``; unknown schemes such as ``v0`` are ignored."""
        timestamp = ""
        signatures: list[str] = []
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                raise VerificationFailed(f"malformed {HEADER} header")
            if key == "t" and not timestamp:
                timestamp = value.strip()
            elif key == "v1":
                signatures.append(value.strip())
        if not timestamp:
            raise VerificationFailed(f"malformed {HEADER} header (no t=)")
        if not signatures:
            raise VerificationFailed(f"malformed {HEADER} header (no v1 signature)")
        return timestamp, signatures
