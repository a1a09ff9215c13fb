"""``meta``: Meta (WhatsApp, Messenger, Instagram) ``X-Hub-Signature-256: sha256=<hex>``.

HMAC-SHA256 of the raw body with the app secret. Meta sends no delivery id, so none is
reported; the ``GET`` ``hub.challenge`` handshake is handled by the webhook route.
"""

from __future__ import annotations

from bridge.verifiers.base import (
    Secrets,
    SignedRequest,
    VerificationFailed,
    hmac_sha256,
    parse_hex_sha256,
    require_header,
    same,
)

HEADER = "X-Hub-Signature-256"


class Meta:
    name = "meta"

    def verify(self, request: SignedRequest, secrets: Secrets) -> None:
        """Check the ``sha256=`` HMAC of the raw body with the app secret."""
        prefix, sep, digest = require_header(request, HEADER).partition("=")
        if not sep or prefix.lower() != "sha256":
            raise VerificationFailed(f"malformed {HEADER} header (expected sha256=<hex>)")
        received = parse_hex_sha256(digest, f"{HEADER} header")
        if not same(hmac_sha256(secrets.secret, request.body), received):
            raise VerificationFailed("signature does not match")

    def delivery_id(self, request: SignedRequest, payload: object) -> str | None:
        return None
